#include <cblas.h>

/* LAPACK's divide-and-conquer SVD, which libopenblas exports (Fortran calling convention: every
   argument by reference, the character argument's hidden length last). Used for PiSSA's initialisation. */
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);
