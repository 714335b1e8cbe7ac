/*
 * numpy's OpenBLAS interface served by scipy's OpenBLAS (Linux build only; see blas_shim.py).
 *
 * The numpy wheel links a 64-bit-integer OpenBLAS (symbols scipy_*64_, 25 MB) and the scipy wheel
 * a 32-bit-integer one (symbols scipy_*, 25 MB): the same library built twice. This file is
 * compiled into a small library under numpy's soname that defines exactly the BLAS and LAPACK
 * routines numpy's extension modules import, each converting its integer arguments to 32 bits
 * and calling scipy's OpenBLAS. blas_shim.py checks at build time that every symbol numpy needs is
 * defined here; otherwise the build keeps numpy's own library.
 *
 * A dimension beyond 32 bits cannot be passed on: the shim then stops the program with a message
 * rather than compute with a wrong size. Integer arrays LAPACK writes (pivots, ranks, the
 * workspace size a query returns) are converted back to 64 bits after the call.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int64_t i64;
typedef int32_t i32;
typedef struct { float re, im; } c32;
typedef struct { double re, im; } c64;

/* Fortran's hidden lengths of the one-character arguments (jobz, uplo, ...). */
#define CHARLEN ((size_t)1)

static i32 narrow(i64 value, const char *routine)
{
    if (value > INT32_MAX || value < INT32_MIN) {
        fprintf(stderr, "HLM Explorer: %s: a matrix dimension of %lld is beyond what the bundled "
                        "BLAS takes (2^31 - 1)\n", routine, (long long)value);
        abort();
    }
    return (i32)value;
}

/* A stride may arrive as a huge positive number that stands for a small negative one: numpy.linalg
 * divides a negative byte stride by the element size in unsigned arithmetic before it copies a
 * matrix, and the 64-bit library then lands on the right elements by wrapping around the address
 * space. The 32-bit number with the same low bits is that negative stride exactly when the two
 * differ by a multiple of 2^64 bytes (as numpy's 32-bit builds pass it); any other value cannot be
 * passed on. */
static i32 narrow_step(i64 value, uint64_t element_size, const char *routine)
{
    i32 low = (i32)value;
    if (((uint64_t)value - (uint64_t)(i64)low) * element_size != 0) {
        fprintf(stderr, "HLM Explorer: %s: a stride of %lld is beyond what the bundled BLAS takes\n",
                routine, (long long)value);
        abort();
    }
    return low;
}

/* A workspace length beyond 32 bits: the workspace is at least 2^31 - 1 entries long, all LAPACK
 * may be told. (-1 asks for the optimal length.) */
static i32 work_length(i64 value, const char *routine)
{
    return value > INT32_MAX ? INT32_MAX : narrow(value, routine);
}

static i32 *int32_buffer(i64 count, const char *routine)
{
    i32 *buffer = malloc((size_t)(count > 0 ? count : 1) * sizeof(i32));
    if (buffer == NULL) {
        fprintf(stderr, "HLM Explorer: %s: out of memory\n", routine);
        abort();
    }
    return buffer;
}

static void widen(i64 *target, const i32 *source, i64 count)
{
    for (i64 i = 0; i < count; i++) target[i] = source[i];
}

/* LAPACK's integer workspace: the caller's 64-bit array holds twice the 32-bit entries LAPACK
 * uses, so it serves as is; only its first entry (the size a workspace query returns) is read
 * back by the caller, as a 64-bit number. */
static void widen_first(i64 *iwork)
{
    i32 first = ((i32 *)iwork)[0];
    iwork[0] = first;
}

#define N32(x) narrow((x), __func__)
#define NP(p) narrow(*(p), __func__)
#define WORK(p) work_length(*(p), __func__)
#define STEP(x, T) narrow_step((x), sizeof(T), __func__)

/* ------------------------------------------------------------------------------------------ */
/* CBLAS (numpy._core: dot, matmul, inner, ...). The enums are ints in both libraries.           */

#define CBLAS_GEMM_REAL(T, x)                                                                      \
    void scipy_cblas_##x##gemm(int, int, int, i32, i32, i32, T, const T *, i32, const T *, i32,    \
                               T, T *, i32);                                                       \
    void scipy_cblas_##x##gemm64_(int order, int ta, int tb, i64 m, i64 n, i64 k, T alpha,         \
                                  const T *a, i64 lda, const T *b, i64 ldb, T beta, T *c, i64 ldc) \
    {                                                                                              \
        scipy_cblas_##x##gemm(order, ta, tb, N32(m), N32(n), N32(k), alpha, a, N32(lda), b,        \
                              N32(ldb), beta, c, N32(ldc));                                        \
    }
#define CBLAS_GEMM_CPLX(x)                                                                         \
    void scipy_cblas_##x##gemm(int, int, int, i32, i32, i32, const void *, const void *, i32,      \
                               const void *, i32, const void *, void *, i32);                      \
    void scipy_cblas_##x##gemm64_(int order, int ta, int tb, i64 m, i64 n, i64 k,                  \
                                  const void *alpha, const void *a, i64 lda, const void *b,        \
                                  i64 ldb, const void *beta, void *c, i64 ldc)                     \
    {                                                                                              \
        scipy_cblas_##x##gemm(order, ta, tb, N32(m), N32(n), N32(k), alpha, a, N32(lda), b,        \
                              N32(ldb), beta, c, N32(ldc));                                        \
    }
CBLAS_GEMM_REAL(float, s)
CBLAS_GEMM_REAL(double, d)
CBLAS_GEMM_CPLX(c)
CBLAS_GEMM_CPLX(z)

#define CBLAS_GEMV_REAL(T, x)                                                                      \
    void scipy_cblas_##x##gemv(int, int, i32, i32, T, const T *, i32, const T *, i32, T, T *,     \
                               i32);                                                               \
    void scipy_cblas_##x##gemv64_(int order, int trans, i64 m, i64 n, T alpha, const T *a,         \
                                  i64 lda, const T *x_, i64 incx, T beta, T *y, i64 incy)         \
    {                                                                                              \
        scipy_cblas_##x##gemv(order, trans, N32(m), N32(n), alpha, a, N32(lda), x_, N32(incx),     \
                              beta, y, N32(incy));                                                 \
    }
#define CBLAS_GEMV_CPLX(T, x)                                                                         \
    void scipy_cblas_##x##gemv(int, int, i32, i32, const void *, const void *, i32, const void *, \
                               i32, const void *, void *, i32);                                    \
    void scipy_cblas_##x##gemv64_(int order, int trans, i64 m, i64 n, const void *alpha,           \
                                  const void *a, i64 lda, const void *x_, i64 incx,                \
                                  const void *beta, void *y, i64 incy)                             \
    {                                                                                              \
        scipy_cblas_##x##gemv(order, trans, N32(m), N32(n), alpha, a, N32(lda), x_, N32(incx),     \
                              beta, y, N32(incy));                                                 \
    }
CBLAS_GEMV_REAL(float, s)
CBLAS_GEMV_REAL(double, d)
CBLAS_GEMV_CPLX(c32, c)
CBLAS_GEMV_CPLX(c64, z)

#define CBLAS_SYRK_REAL(T, x)                                                                      \
    void scipy_cblas_##x##syrk(int, int, int, i32, i32, T, const T *, i32, T, T *, i32);          \
    void scipy_cblas_##x##syrk64_(int order, int uplo, int trans, i64 n, i64 k, T alpha,           \
                                  const T *a, i64 lda, T beta, T *c, i64 ldc)                      \
    {                                                                                              \
        scipy_cblas_##x##syrk(order, uplo, trans, N32(n), N32(k), alpha, a, N32(lda), beta, c,     \
                              N32(ldc));                                                           \
    }
#define CBLAS_SYRK_CPLX(x)                                                                         \
    void scipy_cblas_##x##syrk(int, int, int, i32, i32, const void *, const void *, i32,          \
                               const void *, void *, i32);                                         \
    void scipy_cblas_##x##syrk64_(int order, int uplo, int trans, i64 n, i64 k, const void *alpha, \
                                  const void *a, i64 lda, const void *beta, void *c, i64 ldc)      \
    {                                                                                              \
        scipy_cblas_##x##syrk(order, uplo, trans, N32(n), N32(k), alpha, a, N32(lda), beta, c,     \
                              N32(ldc));                                                           \
    }
CBLAS_SYRK_REAL(float, s)
CBLAS_SYRK_REAL(double, d)
CBLAS_SYRK_CPLX(c)
CBLAS_SYRK_CPLX(z)

#define CBLAS_AXPY_REAL(T, x)                                                                      \
    void scipy_cblas_##x##axpy(i32, T, const T *, i32, T *, i32);                                  \
    void scipy_cblas_##x##axpy64_(i64 n, T alpha, const T *x_, i64 incx, T *y, i64 incy)           \
    {                                                                                              \
        scipy_cblas_##x##axpy(N32(n), alpha, x_, N32(incx), y, N32(incy));                         \
    }
#define CBLAS_AXPY_CPLX(T, x)                                                                         \
    void scipy_cblas_##x##axpy(i32, const void *, const void *, i32, void *, i32);                 \
    void scipy_cblas_##x##axpy64_(i64 n, const void *alpha, const void *x_, i64 incx, void *y,     \
                                  i64 incy)                                                        \
    {                                                                                              \
        scipy_cblas_##x##axpy(N32(n), alpha, x_, N32(incx), y, N32(incy));                         \
    }
CBLAS_AXPY_REAL(float, s)
CBLAS_AXPY_REAL(double, d)
CBLAS_AXPY_CPLX(c32, c)
CBLAS_AXPY_CPLX(c64, z)

#define CBLAS_DOT_REAL(T, x)                                                                       \
    T scipy_cblas_##x##dot(i32, const T *, i32, const T *, i32);                                   \
    T scipy_cblas_##x##dot64_(i64 n, const T *x_, i64 incx, const T *y, i64 incy)                  \
    {                                                                                              \
        return scipy_cblas_##x##dot(N32(n), x_, N32(incx), y, N32(incy));                          \
    }
#define CBLAS_DOT_CPLX(T, name)                                                                       \
    void scipy_cblas_##name(i32, const void *, i32, const void *, i32, void *);                    \
    void scipy_cblas_##name##64_(i64 n, const void *x_, i64 incx, const void *y, i64 incy,         \
                                 void *result)                                                     \
    {                                                                                              \
        scipy_cblas_##name(N32(n), x_, N32(incx), y, N32(incy), result);                           \
    }
CBLAS_DOT_REAL(float, s)
CBLAS_DOT_REAL(double, d)
CBLAS_DOT_CPLX(c32, cdotu_sub)
CBLAS_DOT_CPLX(c32, cdotc_sub)
CBLAS_DOT_CPLX(c64, zdotu_sub)
CBLAS_DOT_CPLX(c64, zdotc_sub)

/* ------------------------------------------------------------------------------------------ */
/* BLAS level 1 with the Fortran interface (numpy.linalg copies with it).                        */

#define COPY(T, x)                                                                                 \
    void scipy_##x##copy_(const i32 *, const T *, const i32 *, T *, const i32 *);                  \
    int scipy_##x##copy_64_(const i64 *n, const T *x_, const i64 *incx, T *y, const i64 *incy)     \
    {                                                                                              \
        i32 n32 = NP(n), incx32 = STEP(*incx, T), incy32 = STEP(*incy, T);                         \
        /* a wrapped stride is a negative one starting at x_ (y): BLAS starts those at the end */  \
        if (*incx > INT32_MAX && n32 > 0) x_ += (i64)(n32 - 1) * incx32;                           \
        if (*incy > INT32_MAX && n32 > 0) y += (i64)(n32 - 1) * incy32;                            \
        scipy_##x##copy_(&n32, x_, &incx32, y, &incy32);                                           \
        return 0;                                                                                  \
    }
COPY(float, s)
COPY(double, d)
COPY(c32, c)
COPY(c64, z)

/* ------------------------------------------------------------------------------------------ */
/* LAPACK (numpy.linalg). Every routine's integer arguments are pointers.                        */

#define GESV(T, x)                                                                                 \
    void scipy_##x##gesv_(const i32 *, const i32 *, T *, const i32 *, i32 *, T *, const i32 *,     \
                          i32 *);                                                                  \
    int scipy_##x##gesv_64_(const i64 *n, const i64 *nrhs, T *a, const i64 *lda, i64 *ipiv, T *b,  \
                            const i64 *ldb, i64 *info)                                             \
    {                                                                                              \
        i32 n32 = NP(n), nrhs32 = NP(nrhs), lda32 = NP(lda), ldb32 = NP(ldb), info32 = 0;          \
        i32 *ipiv32 = int32_buffer(n32, __func__);                                                 \
        scipy_##x##gesv_(&n32, &nrhs32, a, &lda32, ipiv32, b, &ldb32, &info32);                    \
        widen(ipiv, ipiv32, n32);                                                                  \
        free(ipiv32);                                                                              \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GESV(float, s)
GESV(double, d)
GESV(c32, c)
GESV(c64, z)

#define GETRF(T, x)                                                                                \
    void scipy_##x##getrf_(const i32 *, const i32 *, T *, const i32 *, i32 *, i32 *);              \
    int scipy_##x##getrf_64_(const i64 *m, const i64 *n, T *a, const i64 *lda, i64 *ipiv,          \
                             i64 *info)                                                            \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), lda32 = NP(lda), info32 = 0;                                 \
        i32 pivots = m32 < n32 ? m32 : n32;                                                        \
        i32 *ipiv32 = int32_buffer(pivots, __func__);                                              \
        scipy_##x##getrf_(&m32, &n32, a, &lda32, ipiv32, &info32);                                 \
        widen(ipiv, ipiv32, pivots);                                                               \
        free(ipiv32);                                                                              \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GETRF(float, s)
GETRF(double, d)
GETRF(c32, c)
GETRF(c64, z)

#define POTRF(T, x)                                                                                \
    void scipy_##x##potrf_(const char *, const i32 *, T *, const i32 *, i32 *, size_t);            \
    int scipy_##x##potrf_64_(const char *uplo, const i64 *n, T *a, const i64 *lda, i64 *info)      \
    {                                                                                              \
        i32 n32 = NP(n), lda32 = NP(lda), info32 = 0;                                              \
        scipy_##x##potrf_(uplo, &n32, a, &lda32, &info32, CHARLEN);                                \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
POTRF(float, s)
POTRF(double, d)
POTRF(c32, c)
POTRF(c64, z)

#define SYEVD(T, x)                                                                                \
    void scipy_##x##syevd_(const char *, const char *, const i32 *, T *, const i32 *, T *, T *,    \
                           const i32 *, i32 *, const i32 *, i32 *, size_t, size_t);                \
    int scipy_##x##syevd_64_(const char *jobz, const char *uplo, const i64 *n, T *a,               \
                             const i64 *lda, T *w, T *work, const i64 *lwork, i64 *iwork,          \
                             const i64 *liwork, i64 *info)                                         \
    {                                                                                              \
        i32 n32 = NP(n), lda32 = NP(lda), lwork32 = WORK(lwork), liwork32 = WORK(liwork), info32 = 0;  \
        scipy_##x##syevd_(jobz, uplo, &n32, a, &lda32, w, work, &lwork32, (i32 *)iwork, &liwork32, \
                          &info32, CHARLEN, CHARLEN);                                              \
        widen_first(iwork);                                                                        \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
SYEVD(float, s)
SYEVD(double, d)

#define HEEVD(T, R, x)                                                                             \
    void scipy_##x##heevd_(const char *, const char *, const i32 *, T *, const i32 *, R *, T *,    \
                           const i32 *, R *, const i32 *, i32 *, const i32 *, i32 *, size_t,       \
                           size_t);                                                                \
    int scipy_##x##heevd_64_(const char *jobz, const char *uplo, const i64 *n, T *a,               \
                             const i64 *lda, R *w, T *work, const i64 *lwork, R *rwork,            \
                             const i64 *lrwork, i64 *iwork, const i64 *liwork, i64 *info)          \
    {                                                                                              \
        i32 n32 = NP(n), lda32 = NP(lda), lwork32 = WORK(lwork), lrwork32 = WORK(lrwork);              \
        i32 liwork32 = WORK(liwork), info32 = 0;                                                     \
        scipy_##x##heevd_(jobz, uplo, &n32, a, &lda32, w, work, &lwork32, rwork, &lrwork32,        \
                          (i32 *)iwork, &liwork32, &info32, CHARLEN, CHARLEN);                     \
        widen_first(iwork);                                                                        \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
HEEVD(c32, float, c)
HEEVD(c64, double, z)

#define GEEV_REAL(T, x)                                                                            \
    void scipy_##x##geev_(const char *, const char *, const i32 *, T *, const i32 *, T *, T *,     \
                          T *, const i32 *, T *, const i32 *, T *, const i32 *, i32 *, size_t,     \
                          size_t);                                                                 \
    int scipy_##x##geev_64_(const char *jobvl, const char *jobvr, const i64 *n, T *a,              \
                            const i64 *lda, T *wr, T *wi, T *vl, const i64 *ldvl, T *vr,           \
                            const i64 *ldvr, T *work, const i64 *lwork, i64 *info)                 \
    {                                                                                              \
        i32 n32 = NP(n), lda32 = NP(lda), ldvl32 = NP(ldvl), ldvr32 = NP(ldvr);                    \
        i32 lwork32 = WORK(lwork), info32 = 0;                                                       \
        scipy_##x##geev_(jobvl, jobvr, &n32, a, &lda32, wr, wi, vl, &ldvl32, vr, &ldvr32, work,    \
                         &lwork32, &info32, CHARLEN, CHARLEN);                                     \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GEEV_REAL(float, s)
GEEV_REAL(double, d)

#define GEEV_CPLX(T, R, x)                                                                         \
    void scipy_##x##geev_(const char *, const char *, const i32 *, T *, const i32 *, T *, T *,     \
                          const i32 *, T *, const i32 *, T *, const i32 *, R *, i32 *, size_t,     \
                          size_t);                                                                 \
    int scipy_##x##geev_64_(const char *jobvl, const char *jobvr, const i64 *n, T *a,              \
                            const i64 *lda, T *w, T *vl, const i64 *ldvl, T *vr, const i64 *ldvr,  \
                            T *work, const i64 *lwork, R *rwork, i64 *info)                        \
    {                                                                                              \
        i32 n32 = NP(n), lda32 = NP(lda), ldvl32 = NP(ldvl), ldvr32 = NP(ldvr);                    \
        i32 lwork32 = WORK(lwork), info32 = 0;                                                       \
        scipy_##x##geev_(jobvl, jobvr, &n32, a, &lda32, w, vl, &ldvl32, vr, &ldvr32, work,         \
                         &lwork32, rwork, &info32, CHARLEN, CHARLEN);                              \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GEEV_CPLX(c32, float, c)
GEEV_CPLX(c64, double, z)

#define GESDD_REAL(T, x)                                                                           \
    void scipy_##x##gesdd_(const char *, const i32 *, const i32 *, T *, const i32 *, T *, T *,     \
                           const i32 *, T *, const i32 *, T *, const i32 *, i32 *, i32 *, size_t); \
    int scipy_##x##gesdd_64_(const char *jobz, const i64 *m, const i64 *n, T *a, const i64 *lda,   \
                             T *s, T *u, const i64 *ldu, T *vt, const i64 *ldvt, T *work,          \
                             const i64 *lwork, i64 *iwork, i64 *info)                              \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), lda32 = NP(lda), ldu32 = NP(ldu), ldvt32 = NP(ldvt);         \
        i32 lwork32 = WORK(lwork), info32 = 0;                                                       \
        scipy_##x##gesdd_(jobz, &m32, &n32, a, &lda32, s, u, &ldu32, vt, &ldvt32, work, &lwork32,  \
                          (i32 *)iwork, &info32, CHARLEN);                                         \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GESDD_REAL(float, s)
GESDD_REAL(double, d)

#define GESDD_CPLX(T, R, x)                                                                        \
    void scipy_##x##gesdd_(const char *, const i32 *, const i32 *, T *, const i32 *, R *, T *,     \
                           const i32 *, T *, const i32 *, T *, const i32 *, R *, i32 *, i32 *,     \
                           size_t);                                                                \
    int scipy_##x##gesdd_64_(const char *jobz, const i64 *m, const i64 *n, T *a, const i64 *lda,   \
                             R *s, T *u, const i64 *ldu, T *vt, const i64 *ldvt, T *work,          \
                             const i64 *lwork, R *rwork, i64 *iwork, i64 *info)                    \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), lda32 = NP(lda), ldu32 = NP(ldu), ldvt32 = NP(ldvt);         \
        i32 lwork32 = WORK(lwork), info32 = 0;                                                       \
        scipy_##x##gesdd_(jobz, &m32, &n32, a, &lda32, s, u, &ldu32, vt, &ldvt32, work, &lwork32,  \
                          rwork, (i32 *)iwork, &info32, CHARLEN);                                  \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GESDD_CPLX(c32, float, c)
GESDD_CPLX(c64, double, z)

#define GELSD_REAL(T, x)                                                                           \
    void scipy_##x##gelsd_(const i32 *, const i32 *, const i32 *, T *, const i32 *, T *,           \
                           const i32 *, T *, const T *, i32 *, T *, const i32 *, i32 *, i32 *);    \
    int scipy_##x##gelsd_64_(const i64 *m, const i64 *n, const i64 *nrhs, T *a, const i64 *lda,    \
                             T *b, const i64 *ldb, T *s, const T *rcond, i64 *rank, T *work,       \
                             const i64 *lwork, i64 *iwork, i64 *info)                              \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), nrhs32 = NP(nrhs), lda32 = NP(lda), ldb32 = NP(ldb);         \
        i32 lwork32 = WORK(lwork), rank32 = 0, info32 = 0;                                           \
        scipy_##x##gelsd_(&m32, &n32, &nrhs32, a, &lda32, b, &ldb32, s, rcond, &rank32, work,      \
                          &lwork32, (i32 *)iwork, &info32);                                        \
        widen_first(iwork);                                                                        \
        *rank = rank32;                                                                            \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GELSD_REAL(float, s)
GELSD_REAL(double, d)

#define GELSD_CPLX(T, R, x)                                                                        \
    void scipy_##x##gelsd_(const i32 *, const i32 *, const i32 *, T *, const i32 *, T *,           \
                           const i32 *, R *, const R *, i32 *, T *, const i32 *, R *, i32 *,       \
                           i32 *);                                                                 \
    int scipy_##x##gelsd_64_(const i64 *m, const i64 *n, const i64 *nrhs, T *a, const i64 *lda,    \
                             T *b, const i64 *ldb, R *s, const R *rcond, i64 *rank, T *work,       \
                             const i64 *lwork, R *rwork, i64 *iwork, i64 *info)                    \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), nrhs32 = NP(nrhs), lda32 = NP(lda), ldb32 = NP(ldb);         \
        i32 lwork32 = WORK(lwork), rank32 = 0, info32 = 0;                                           \
        scipy_##x##gelsd_(&m32, &n32, &nrhs32, a, &lda32, b, &ldb32, s, rcond, &rank32, work,      \
                          &lwork32, rwork, (i32 *)iwork, &info32);                                 \
        widen_first(iwork);                                                                        \
        *rank = rank32;                                                                            \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GELSD_CPLX(c32, float, c)
GELSD_CPLX(c64, double, z)

#define GEQRF(T, x)                                                                                \
    void scipy_##x##geqrf_(const i32 *, const i32 *, T *, const i32 *, T *, T *, const i32 *,      \
                           i32 *);                                                                 \
    int scipy_##x##geqrf_64_(const i64 *m, const i64 *n, T *a, const i64 *lda, T *tau, T *work,    \
                             const i64 *lwork, i64 *info)                                          \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), lda32 = NP(lda), lwork32 = WORK(lwork), info32 = 0;            \
        scipy_##x##geqrf_(&m32, &n32, a, &lda32, tau, work, &lwork32, &info32);                    \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
GEQRF(double, d)
GEQRF(c64, z)

#define ORGQR(T, name)                                                                             \
    void scipy_##name##_(const i32 *, const i32 *, const i32 *, T *, const i32 *, const T *, T *,  \
                         const i32 *, i32 *);                                                      \
    int scipy_##name##_64_(const i64 *m, const i64 *n, const i64 *k, T *a, const i64 *lda,         \
                           const T *tau, T *work, const i64 *lwork, i64 *info)                     \
    {                                                                                              \
        i32 m32 = NP(m), n32 = NP(n), k32 = NP(k), lda32 = NP(lda), lwork32 = WORK(lwork);           \
        i32 info32 = 0;                                                                            \
        scipy_##name##_(&m32, &n32, &k32, a, &lda32, tau, work, &lwork32, &info32);                \
        *info = info32;                                                                            \
        return 0;                                                                                  \
    }
ORGQR(double, dorgqr)
ORGQR(c64, zungqr)

/* ------------------------------------------------------------------------------------------ */
/* OpenBLAS's own queries, for tools that look for them (threadpoolctl): the one shared library.  */

char *scipy_openblas_get_config(void);
char *scipy_openblas_get_config64_(void) { return scipy_openblas_get_config(); }
char *scipy_openblas_get_corename(void);
char *scipy_openblas_get_corename64_(void) { return scipy_openblas_get_corename(); }
int scipy_openblas_get_num_threads(void);
int scipy_openblas_get_num_threads64_(void) { return scipy_openblas_get_num_threads(); }
int scipy_openblas_get_num_procs(void);
int scipy_openblas_get_num_procs64_(void) { return scipy_openblas_get_num_procs(); }
int scipy_openblas_get_parallel(void);
int scipy_openblas_get_parallel64_(void) { return scipy_openblas_get_parallel(); }
void scipy_openblas_set_num_threads(int);
void scipy_openblas_set_num_threads64_(int count) { scipy_openblas_set_num_threads(count); }
