// One triangle that covers the whole target; no vertex buffer needed (gl_VertexID 0..2).
// v_uv runs 0..1 across the target in GL's orientation (y = 0 at the bottom).
out vec2 v_uv;

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
