// Shared by every shader. Tensors are fp32 arrays bound as whole buffers; each binding's first
// element comes in the push constants (views and slices share buffers at any element offset, which
// descriptor offsets could not express: they must be multiples of minStorageBufferOffsetAlignment).
// Workgroups have 64 invocations: Vulkan guarantees 128 (maxComputeWorkGroupInvocations), so every
// conforming device runs them, and 64 is a multiple of every subgroup size in use (8 to 64).
#define WG 64

// The flat index of this workgroup in a 2-D grid (x up to 65535, y for the rest).
uint flatGroup() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

// Grid-stride step for 1-D elementwise dispatches.
uint gridStride() { return gl_NumWorkGroups.x * WG; }
