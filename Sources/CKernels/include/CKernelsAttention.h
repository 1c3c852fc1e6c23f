// Attention kernels (kernels_attention.c). Filled in by the attention work; included by CKernels.h.
#ifndef LORAD_CKERNELS_ATTENTION_H
#define LORAD_CKERNELS_ATTENTION_H
#endif
