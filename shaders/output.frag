// The last pass: master intensity and blackout, then the flash limiter's blend toward the
// picture presented last time. The blend is done in linear light, so the mean luminance of the
// result is exactly mix(previous, new, u_limit) — the number the limiter asked for.

uniform sampler2D u_src;       // the chain's result
uniform sampler2D u_previous;  // the picture presented last time (same size)
uniform float u_gain;          // master x (1 - blackout)
uniform float u_limit;         // 1 = show the new picture; below 1 = hold closer to the previous

out vec4 frag_color;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 current = clamp(texelFetch(u_src, p, 0).rgb * u_gain, 0.0, 1.0);
    if (u_limit >= 1.0) {
        frag_color = vec4(current, 1.0);
        return;
    }
    vec3 previous = texelFetch(u_previous, p, 0).rgb;
    vec3 blended = mix(srgb_to_linear(previous), srgb_to_linear(current), u_limit);
    frag_color = vec4(linear_to_srgb(blended), 1.0);
}
