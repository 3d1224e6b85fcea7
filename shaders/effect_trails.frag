// Trails: the picture leaves glowing trails that fade out; loudness makes them longer.
// Feedback: u_history is this effect's own output from the previous picture. The fade is set
// in seconds (not per picture), so trails look the same at 30, 60 or 144 Hz.

uniform sampler2D u_src;
uniform sampler2D u_history;
uniform float p_length;    // seconds to fade to 1/e
uniform float p_loudness;  // 0..1: how much loudness lengthens the trails (up to 4x)
uniform float p_zoom;      // zoom per second of the trails (>0 outward)

out vec4 frag_color;

void main() {
    vec3 src = texture(u_src, v_uv).rgb;
    float length_s = p_length * (1.0 + 3.0 * p_loudness * clamp(u_loudness, 0.0, 1.0));
    float keep = exp(-u_dt / max(length_s, 1e-3));
    float zoom = exp(p_zoom * u_dt);
    vec3 history = texture(u_history, (v_uv - 0.5) / zoom + 0.5).rgb;
    frag_color = vec4(max(src, history * keep), 1.0);
}
