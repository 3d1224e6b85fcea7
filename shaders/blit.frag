// Copies the presented picture to the window (or any other target) unchanged.

uniform sampler2D u_src;

out vec4 frag_color;

void main() {
    frag_color = vec4(texture(u_src, v_uv).rgb, 1.0);
}
