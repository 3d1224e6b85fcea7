// Measures the mean relative luminance of the picture about to be shown, cheaply: the target is
// a small grid (32x32); each cell averages a 4x4 spread of texels from its part of the picture.
// The renderer reads the grid back (4 KB) instead of the whole picture.

uniform sampler2D u_src;   // the chain's result
uniform float u_gain;      // master x (1 - blackout), as the output pass applies it

out vec4 frag_color;

void main() {
    ivec2 size = textureSize(u_src, 0);
    vec2 cell = vec2(size) / u_resolution;  // source texels per grid cell
    vec2 corner = (gl_FragCoord.xy - 0.5) * cell;
    float sum = 0.0;
    for (int j = 0; j < 4; ++j) {
        for (int i = 0; i < 4; ++i) {
            ivec2 p = ivec2(corner + (vec2(i, j) + 0.5) * cell / 4.0);
            p = clamp(p, ivec2(0), size - 1);
            vec3 c = clamp(texelFetch(u_src, p, 0).rgb * u_gain, 0.0, 1.0);
            sum += relative_luminance(srgb_to_linear(c));
        }
    }
    frag_color = vec4(sum / 16.0, 0.0, 0.0, 1.0);
}
