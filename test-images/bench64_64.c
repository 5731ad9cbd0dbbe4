/*
 * The 64-bit part of bench64.elf, entered at LM64_BASE in 64-bit mode at
 * CPL 0 with SSE enabled by the 32-bit part (bench64.c).  Built with
 * -msse4.2 and without -mgeneral-regs-only, so plain double/float code
 * becomes scalar SD/SS instructions; the packed kernels use GCC vector types
 * so that addpd/mulps/paddd/pmulld appear whatever the vectorizer decides.
 *
 * The results are folded into the checksums as raw IEEE bits.  Every
 * operation used (add, sub, mul, div, sqrt, conversions) is correctly
 * rounded under IEEE 754 with round-to-nearest, which MXCSR is set to below,
 * so a conforming CPU or emulator prints exactly the same hex.  No value
 * gets near the denormal range or overflows: see the bounds at each kernel.
 */
#include "bench64.h"

typedef unsigned int u32;
typedef unsigned long u64;
typedef double v2df __attribute__((vector_size(16)));
typedef float v4sf __attribute__((vector_size(16)));
typedef u32 v4su __attribute__((vector_size(16)));
typedef u64 v2du __attribute__((vector_size(16)));

#define ALIGNED(n) __attribute__((aligned(n)))

#ifndef BENCH64_ITERS
#define BENCH64_ITERS 20
#endif

/* gcc may call these for struct copies and clears even when freestanding. */
void *memset(void *d, int c, u64 n);
void *memcpy(void *d, const void *s, u64 n);
void *memset(void *d, int c, u64 n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, u64 n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static inline u64 fold(u64 h, u64 v)
{
    h ^= v;
    h *= 0x100000001B3ul;
    return h ^ (h >> 29);
}
static inline u64 dbits(double d)
{
    union { double d; u64 u; } x = { d };
    return x.u;
}
static inline u64 fbits(float f)
{
    union { float f; u32 u; } x = { f };
    return x.u;
}

/* ------------------------------------------------------------------------ */
/* Double matrix multiply, packed: C = A B, then A = C + s A0.  Every row of
 * B has |b| summing to at most 16 * 5/128 < 1, so A stays bounded while the
 * round-dependent s keeps it from settling on a fixed point. */

#define N 16
static double ma[N][N] ALIGNED(16), mb[N][N] ALIGNED(16), mc[N][N] ALIGNED(16),
    m0[N][N] ALIGNED(16);

static void matmul_init(void)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            mb[i][j] = (double)((i * 7 + j * 3) % 11 - 5) / 128.0;
            m0[i][j] = (double)((i * 5 + j * 9) % 13 - 6) / 8.0;
            ma[i][j] = m0[i][j];
        }
}

static __attribute__((noinline)) u64 matmul_round(u64 h, u32 r)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j += 2) {
            v2df acc = { 0, 0 };
            for (int k = 0; k < N; k++) {
                v2df a = { ma[i][k], ma[i][k] };
                acc += a * *(const v2df *)&mb[k][j];
            }
            *(v2df *)&mc[i][j] = acc;
        }
    double s = (double)(r & 7) * 0.125 + 0.0625;
    v2df sv = { s, s };
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j += 2) {
            *(v2df *)&ma[i][j] = *(const v2df *)&mc[i][j] + *(const v2df *)&m0[i][j] * sv;
            h = fold(h, dbits(mc[i][j]) ^ dbits(mc[i][j + 1]) << 1);
        }
    return h;
}

/* ------------------------------------------------------------------------ */
/* An n-body step in scalar double, with sqrtsd and divsd; the softening
 * EPS2 keeps the accelerations finite in close encounters. */

#define NB 8
static double px[NB], py[NB], pz[NB], vx[NB], vy[NB], vz[NB], mass[NB];

static void nbody_init(void)
{
    for (int i = 0; i < NB; i++) {
        px[i] = (double)(i % 3) - 1.0 + 0.125 * i;
        py[i] = (double)(i % 4) * 0.5 - 0.75;
        pz[i] = (double)((i * 5) % 7) * 0.25 - 0.75;
        vx[i] = (double)(i % 2) * 0.25 - 0.125;
        vy[i] = (double)((i * 3) % 5) * 0.0625;
        vz[i] = 0.0;
        mass[i] = 0.5 + (double)i * 0.0625;
    }
}

static __attribute__((noinline)) u64 nbody_round(u64 h)
{
    const double dt = 0.01, eps2 = 0.01;
    double ax[NB], ay[NB], az[NB];
    for (int i = 0; i < NB; i++) {
        double sx = 0, sy = 0, sz = 0;
        for (int j = 0; j < NB; j++) {
            if (j == i)
                continue;
            double dx = px[j] - px[i], dy = py[j] - py[i], dz = pz[j] - pz[i];
            double d2 = dx * dx + dy * dy + dz * dz + eps2;
            double f = mass[j] / (d2 * __builtin_sqrt(d2));
            sx += f * dx;
            sy += f * dy;
            sz += f * dz;
        }
        ax[i] = sx;
        ay[i] = sy;
        az[i] = sz;
    }
    for (int i = 0; i < NB; i++) {
        vx[i] += ax[i] * dt;
        vy[i] += ay[i] * dt;
        vz[i] += az[i] * dt;
        px[i] += vx[i] * dt;
        py[i] += vy[i] * dt;
        pz[i] += vz[i] * dt;
        h = fold(h, dbits(px[i]) + dbits(vy[i]) + dbits(pz[i]));
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* Float: y = a x + b y and the dot product x.y packed, then per element a
 * scalar Horner polynomial and a division that make the next x.  With
 * b = 3/4, |y| <= 2 max|x|; the next x is about |y|/8 + 2, so both stay
 * bounded. */

#define NF 256
static float fx[NF] ALIGNED(16), fy[NF] ALIGNED(16);

static void saxpy_init(void)
{
    for (int i = 0; i < NF; i++) {
        fx[i] = (float)(i % 17) * 0.25f - 2.0f;
        fy[i] = (float)(i % 5) - 2.0f;
    }
}

static __attribute__((noinline)) u64 saxpy_round(u64 h, u32 r)
{
    const v4sf a = { 0.5f, 0.5f, 0.5f, 0.5f }, b = { 0.75f, 0.75f, 0.75f, 0.75f };
    v4sf dot = { 0, 0, 0, 0 };
    v4sf *x = (v4sf *)fx, *y = (v4sf *)fy;
    for (int i = 0; i < NF / 4; i++) {
        v4sf yi = a * x[i] + b * y[i];
        y[i] = yi;
        dot += x[i] * yi;
    }
    float d = (dot[0] + dot[1]) + (dot[2] + dot[3]);
    /* The carry c keeps this loop scalar (SS instructions): each element
     * depends on the one before. */
    float c = 0;
    for (int i = 0; i < NF; i++) {
        float v = fy[i] + c * 0.125f;
        float p = ((0.125f * v - 0.25f) * v + 0.5f) * v + 1.0f;
        float q = p / (1.0f + v * v);
        c = q * 0.25f;
        fx[i] = q + (float)((((u32)i + r) ^ (u32)(int)(q * 4.0f)) & 15) * 0.0625f;
    }
    h = fold(h, fbits(d));
    h = fold(h, dbits((double)d * 1.5));
    h = fold(h, fbits(fx[r & (NF - 1)]) << 32 | fbits(fy[(r * 7) & (NF - 1)]));
    return h;
}

/* ------------------------------------------------------------------------ */
/* Integer SSE over 8 KiB: pxor, pmulld, psrld, paddd, pshufd, movdqa. */

#define NI 512
/* The page alignment starts the folded .data/.bss (long_mode64.ld) on a
 * page of its own: the kernels' stores would otherwise land on the page
 * that holds all the code, which measures an emulator's self-modifying-code
 * handling instead of its arithmetic. */
static v4su ibuf[NI] ALIGNED(4096);

static void intsse_init(void)
{
    for (u32 i = 0; i < NI; i++)
        ibuf[i] = (v4su){ i * 4, i * 4 + 1, i * 4 + 2, i * 4 + 3 } * 0x9E3779B9u;
}

static __attribute__((noinline)) u64 intsse_round(u64 h, u32 r)
{
    const v4su mul = { 0x85EBCA6Bu, 0xC2B2AE35u, 0x27D4EB2Fu, 0x165667B1u };
    const v4su rot = { 1, 2, 3, 0 };
    v4su key = { r, r ^ 0x5BD1E995u, ~r, r * 3u }, acc = { 0, 0, 0, 0 };
    for (int i = 0; i < NI; i++) {
        v4su v = (ibuf[i] ^ key) * mul;
        v += v >> 13;
        key = __builtin_shuffle(key, rot) + v;
        acc ^= v;
        ibuf[i] = v;
    }
    v2du q = (v2du)acc + (v2du)key;
    h = fold(h, q[0]);
    return fold(h, q[1]);
}

/* ------------------------------------------------------------------------ */

void lm64_entry(struct bench64_result *res) __attribute__((section(".text.entry")));
void lm64_entry(struct bench64_result *res)
{
    /* The reset value, set anyway so the rounding mode is not inherited:
     * round to nearest, all exceptions masked, no DAZ/FTZ. */
    u32 mxcsr = 0x1F80;
    __asm__ volatile("ldmxcsr %0" :: "m"(mxcsr));

    matmul_init();
    nbody_init();
    saxpy_init();
    intsse_init();
    u64 h[B64_TOTAL] = { 0 };
    for (u32 r = 0; r < BENCH64_ITERS; r++) {
        h[B64_MATMUL] = matmul_round(h[B64_MATMUL], r);
        h[B64_NBODY] = nbody_round(h[B64_NBODY]);
        h[B64_SAXPY] = saxpy_round(h[B64_SAXPY], r);
        h[B64_INTSSE] = intsse_round(h[B64_INTSSE], r);
    }
    u64 total = 0;
    for (int i = 0; i < B64_TOTAL; i++) {
        res->sum[i] = h[i];
        total = fold(total, h[i]);
    }
    res->sum[B64_TOTAL] = total;
    res->rounds = BENCH64_ITERS;
}
