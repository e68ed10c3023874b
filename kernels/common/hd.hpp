// MOE_HD: a function for both the host and the device (inlined), or plain inline where CUDA is not compiling.
#pragma once

#if defined(__CUDACC__)
#define MOE_HD __host__ __device__ __forceinline__
#else
#define MOE_HD inline
#endif
