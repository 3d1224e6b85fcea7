// Kaleidoscope: mirrored wedges around the centre. The spin runs with time; the bass adds a
// twist proportional to its level (an offset, not a speed, so a bass change never jumps).

uniform sampler2D u_src;
uniform float p_segments;  // wedges (rounded down)
uniform float p_spin;      // turns per second
uniform float p_bass;      // twist from the bass, in wedge widths
uniform float p_mix;       // blend with the untouched picture

out vec4 frag_color;

const float TAU = 6.28318530718;

void main() {
    float aspect = u_aspect();
    vec2 p = (v_uv - 0.5) * vec2(aspect, 1.0);  // square units around the centre
    float wedge = TAU / max(floor(p_segments), 1.0);
    float a = atan(p.y, p.x) + TAU * p_spin * u_time + p_bass * clamp(u_bass, 0.0, 1.0) * wedge;
    a = mod(a, wedge);
    a = min(a, wedge - a);  // mirror inside each wedge so the edges meet seamlessly
    vec2 q = vec2(cos(a), sin(a)) * length(p);
    vec2 uv = q / vec2(aspect, 1.0) + 0.5;
    vec3 folded = texture(u_src, uv).rgb;
    frag_color = vec4(mix(texture(u_src, v_uv).rgb, folded, p_mix), 1.0);
}
