// Puts the generated frames on the output: fit (letterbox), fill (crop) or stretch, and the
// cross-fade between the two newest frames when generation is slower than the display.
// The placement numbers come from vjgan/display/geometry.py (shared with the torch fallback).

uniform sampler2D u_frame_a;  // the older of the two newest frames
uniform sampler2D u_frame_b;  // the newest frame
uniform vec2 u_scale_a;       // each frame's size on the output, as a fraction of the output
uniform vec2 u_scale_b;
uniform float u_mix;          // 0 = all A, 1 = all B
uniform vec3 u_background;    // colour of fit's bars (and of the screen before the first frame)
uniform int u_frames;         // how many frames exist yet (0, 1 or 2)

out vec4 frag_color;

// Frame textures hold the image top row first (row 0 = top), so image coordinates run down.
vec4 sample_frame(sampler2D frame, vec2 scale) {
    vec2 image = vec2(v_uv.x, 1.0 - v_uv.y);
    vec2 uv = (image - 0.5) / scale + 0.5;
    bool inside = all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)));
    return inside ? vec4(texture(frame, uv).rgb, 1.0) : vec4(u_background, 1.0);
}

void main() {
    if (u_frames == 0) {
        frag_color = vec4(u_background, 1.0);
        return;
    }
    vec4 b = sample_frame(u_frame_b, u_scale_b);
    if (u_frames == 1 || u_mix >= 1.0) {
        frag_color = b;
        return;
    }
    frag_color = mix(sample_frame(u_frame_a, u_scale_a), b, u_mix);
}
