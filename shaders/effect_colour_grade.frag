// Colour grade: saturation, contrast, brightness and a hue rotation that can kick on the beat.

uniform sampler2D u_src;
uniform float p_saturation;
uniform float p_contrast;
uniform float p_brightness;
uniform float p_hue;              // turns
uniform float p_hue_beat;         // turns of hue kick on each beat
uniform float p_bass_saturation;  // extra saturation with the bass

out vec4 frag_color;

// Rotation about the grey axis (1,1,1)/sqrt(3) by `turns` of a full circle.
vec3 rotate_hue(vec3 c, float turns) {
    float a = turns * 6.28318530718;
    float cs = cos(a), sn = sin(a);
    const float k = 0.57735026919;  // 1/sqrt(3)
    vec3 axis = vec3(k);
    return c * cs + cross(axis, c) * sn + axis * dot(axis, c) * (1.0 - cs);
}

void main() {
    vec3 c = texture(u_src, v_uv).rgb;
    float kick = pow(1.0 - clamp(u_beat_phase, 0.0, 1.0), 3.0);
    c = rotate_hue(c, p_hue + p_hue_beat * kick);
    float grey = dot(c, vec3(0.2126, 0.7152, 0.0722));
    float saturation = p_saturation * (1.0 + p_bass_saturation * clamp(u_bass, 0.0, 1.0));
    c = mix(vec3(grey), c, saturation);
    c = (c - 0.5) * p_contrast + 0.5 + p_brightness;
    frag_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
