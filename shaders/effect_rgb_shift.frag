// RGB shift: red and blue split apart along one direction on onsets and with the bass.

uniform sampler2D u_src;
uniform float p_amount;  // split at full drive, as a fraction of the width
uniform float p_angle;   // degrees
uniform float p_onset;   // drive from onsets
uniform float p_bass;    // drive from the bass
uniform float p_base;    // constant drive

out vec4 frag_color;

void main() {
    float drive = p_base + p_onset * clamp(u_onset, 0.0, 1.0) + p_bass * clamp(u_bass, 0.0, 1.0);
    float a = radians(p_angle);
    // The same length in pixels in both directions, whatever the output's aspect.
    vec2 d = vec2(cos(a), sin(a) * u_aspect()) * p_amount * drive;
    float r = texture(u_src, v_uv + d).r;
    float g = texture(u_src, v_uv).g;
    float b = texture(u_src, v_uv - d).b;
    frag_color = vec4(r, g, b, 1.0);
}
