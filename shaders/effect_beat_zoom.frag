// Beat zoom: the picture punches in on each beat and relaxes until the next; the bass adds to it.

uniform sampler2D u_src;
uniform float p_amount;     // extra zoom on the beat
uniform float p_sharpness;  // how quickly the punch falls back
uniform float p_bass;       // extra zoom from the bass, relative to amount

out vec4 frag_color;

void main() {
    float punch = pow(1.0 - clamp(u_beat_phase, 0.0, 1.0), p_sharpness);
    float zoom = 1.0 + p_amount * (punch + p_bass * clamp(u_bass, 0.0, 1.0));
    frag_color = vec4(texture(u_src, (v_uv - 0.5) / zoom + 0.5).rgb, 1.0);
}
