// Prepended to every fragment shader of the chain (after the #version line) by
// vjgan/display/shaders.py, so each file below can use these inputs and helpers.

in vec2 v_uv;  // 0..1 across the target, y = 0 at the bottom (GL orientation)

uniform vec2 u_resolution;  // target size in pixels
uniform float u_time;       // seconds since the renderer started (wraps every hour)
uniform float u_dt;         // seconds since the previous picture
uniform float u_levels[16]; // band envelopes 0..1 in the preset's band order
uniform int u_level_count;
uniform float u_bass;       // bass envelope 0..1
uniform float u_loudness;   // overall level 0..1
uniform float u_beat_phase; // 0..1 ramp, 0 on the beat
uniform float u_onset;      // 1 at an onset, decaying towards 0

float u_aspect() { return u_resolution.x / u_resolution.y; }

// The exact sRGB transfer curves (IEC 61966-2-1): luminance is measured and the flash limiter
// blends in linear light, where averages of light are averages of numbers.
vec3 srgb_to_linear(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), c));
}

vec3 linear_to_srgb(vec3 c) {
    c = clamp(c, 0.0, 1.0);
    return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(vec3(0.0031308), c));
}

// Relative luminance (Rec. 709 / sRGB primaries), as in WCAG's flash definitions.
float relative_luminance(vec3 linear_rgb) {
    return dot(linear_rgb, vec3(0.2126, 0.7152, 0.0722));
}
