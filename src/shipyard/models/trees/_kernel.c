/* Shipyard's tree-ensemble evaluator: one generic kernel over flat node arrays.
 *
 * Nodes are laid out so that the two children of a node are adjacent (right = left + 1);
 * a step is then branch-free: idx = left + go_right. A leaf points to itself with an
 * infinite threshold, so a block of rows walks a tree level by level without testing
 * for leaves, until no row moved. Rows are processed in blocks of BLOCK: the block's
 * features stay in L1 while every tree visits it, and the BLOCK independent walks of
 * one tree hide each other's memory latency. On a CPU with AVX-512 (the library is
 * built with -march=native), float32 inputs on perfect trees take a vector walk, 16 rows
 * a lane each (see perfect_tree_vec); it makes the same comparisons and the same
 * additions in the same order as the scalar walk, so its sums are bit-identical (a
 * test compiles both and compares).
 *
 * The rule is always "go left iff x <= threshold", in the precision of the input:
 * float32 inputs meet float32 thresholds, float64 inputs float64 thresholds. The
 * converters turn every framework's rule into this one exactly (scikit-learn compares a
 * float32 feature with a float64 threshold t: for float32 x, x <= t iff x <= the largest
 * float32 not above t; XGBoost's x < t becomes x <= the float32 just below t). NaN goes
 * the node's default way (bit 31 of feat) in the NAN variants. Each row sums its trees'
 * leaf values in tree order, in ACC precision, so results are bit-identical to
 * frameworks that sum the same way. Compiled without -ffast-math: the NaN tests and
 * the summation order must stay as written.
 */
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    float thr;
    int32_t feat; /* feature index; bit 31 set when NaN goes left */
    int32_t left; /* absolute index of the left child; the right child is left + 1 */
} node32_t;

typedef struct {
    double thr;
    int32_t feat;
    int32_t left;
} node64_t;

/* 256 rather than 128: the vector walk loads a tree's level tables once per block, and
 * twice the rows per load took ~10% off the time per row at 200-1,024 rows on the bench
 * forest (50 trees, depth 8, 20 features: 20 KB of transposed rows, still in L1); the
 * scalar walks measured the same either way. */
#define BLOCK 256
#define BLOCK_SHIFT 8 /* log2(BLOCK) */
/* Fewer rows than this take the scalar walk: a vector walk pays a tree's level tables
 * once per block, too much for a handful of rows (an online request). */
#define VEC_MIN_ROWS 32

/* Each row of the block adds its leaf's values (TV + leaf * width) to its sums of tree
 * t's columns, in tree order (used inside KERNEL and PERFECT). */
#define ADD_LEAVES(ACC, TV)                                                                \
    {                                                                                      \
        int32_t g = groups[t];                                                             \
        for (int64_t k = 0; k < nb; k++) {                                                 \
            const double *lv = (TV) + (int64_t)idx[k] * width;                             \
            ACC *o = ob + k * nout + g;                                                    \
            for (int64_t j = 0; j < width; j++) o[j] += (ACC)lv[j];                        \
        }                                                                                  \
    }

#define KERNEL(NAME, XT, NT, ACC, NAN)                                                     \
    void NAME(const XT *x, int64_t n, int64_t nf, const NT *nodes, const int32_t *roots,  \
              const int32_t *depths, const int32_t *groups, int64_t ntrees,                \
              const double *values, int64_t width, int64_t nout, ACC *out) {               \
        int32_t idx[BLOCK];                                                                \
        for (int64_t r0 = 0; r0 < n; r0 += BLOCK) {                                        \
            int64_t nb = n - r0 < BLOCK ? n - r0 : BLOCK;                                  \
            const XT *xb = x + r0 * nf;                                                    \
            ACC *ob = out + r0 * nout;                                                     \
            for (int64_t t = 0; t < ntrees; t++) {                                         \
                int32_t root = roots[t];                                                   \
                for (int64_t k = 0; k < nb; k++) idx[k] = root;                            \
                for (int32_t d = depths[t]; d > 0; d--) {                                  \
                    int32_t moved = 0;                                                     \
                    for (int64_t k = 0; k < nb; k++) {                                     \
                        const NT *nd = nodes + idx[k];                                     \
                        int32_t f = nd->feat;                                              \
                        int32_t right;                                                     \
                        if (NAN) {                                                         \
                            int32_t nan_left = (int32_t)((uint32_t)f >> 31);               \
                            f &= 0x7fffffff;                                                  \
                            XT v = xb[k * nf + f];                                         \
                            right = !(v <= nd->thr) & !((v != v) & nan_left);              \
                        } else {                                                           \
                            f &= 0x7fffffff;                                                  \
                            right = !(xb[k * nf + f] <= nd->thr);                          \
                        }                                                                  \
                        int32_t next = nd->left + right;                                   \
                        moved |= next ^ idx[k];                                            \
                        idx[k] = next;                                                     \
                    }                                                                      \
                    if (!moved) break;                                                     \
                }                                                                          \
                ADD_LEAVES(ACC, values)                                                    \
            }                                                                              \
        }                                                                                  \
    }

/* Shallow trees (the common case: forests of bounded depth, boosted trees) are stored
 * as perfect binary trees of their own depth D in heap order: node i's children are
 * 2i+1 and 2i+2, so a step needs no child pointer, and every walk takes exactly D steps.
 * A leaf above depth D becomes a chain of always-left nodes (threshold +inf, NaN left)
 * down to the leftmost leaf slot of its subtree, which holds its value. */
typedef struct {
    float thr;
    int32_t feat;
} pnode32_t;

typedef struct {
    double thr;
    int32_t feat;
    int32_t pad;
} pnode64_t;

/* A block without NaN (the common case, checked once per block) takes the plain step;
 * only blocks holding a NaN pay for the default-direction test. */
#define PERFECT_STEP(XT, NT, WITH_NAN)                                                     \
    for (int32_t d = 0; d < depth; d++) {                                                  \
        for (int64_t k = 0; k < nb; k++) {                                                 \
            int32_t i = idx[k];                                                            \
            NT nd = tree[i];                                                               \
            int32_t f = nd.feat;                                                           \
            int32_t right;                                                                 \
            if (WITH_NAN) {                                                                \
                int32_t nan_left = (int32_t)((uint32_t)f >> 31);                           \
                f &= 0x7fffffff;                                                              \
                XT v = xb[k * nf + f];                                                     \
                right = !(v <= nd.thr) & !((v != v) & nan_left);                           \
            } else {                                                                       \
                f &= 0x7fffffff;                                                              \
                right = !(xb[k * nf + f] <= nd.thr);                                       \
            }                                                                              \
            idx[k] = 2 * i + 1 + right;                                                    \
        }                                                                                  \
    }

#if defined(__AVX512F__)
#include <immintrin.h>
#define HAVE_VECTOR 1
/* The vector walk (AVX-512, 16 rows a lane each) for float32 inputs on perfect trees.
 * The block's rows are transposed to feature-major (xt[f * BLOCK + row]) once, so the
 * root's test is a plain load and deeper ones one gather each. A level of at most 32
 * nodes is looked up with register permutes from a table loaded once per tree and
 * block (no gather); deeper levels gather the nodes. Blocks holding a NaN take the
 * scalar walk. The decision is the scalar one: left iff x <= thr (ordered compare). */
/* One level for the 16 rows of vector v at nodes idx, whose thresholds are t and
 * features f: row x goes to 2i+1 (left) iff x[f] <= t, else to 2i+2. */
static inline __m512i step16(const float *xt, int v, __m512i idx, __m512 t, __m512i f) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i at = _mm512_add_epi32(_mm512_slli_epi32(f, BLOCK_SHIFT),
                                  _mm512_add_epi32(lane, _mm512_set1_epi32(16 * v)));
    __m512 x = _mm512_i32gather_ps(at, xt, 4);
    __mmask16 left = _mm512_cmp_ps_mask(x, t, _CMP_LE_OQ);
    __m512i next = _mm512_add_epi32(_mm512_slli_epi32(idx, 1), _mm512_set1_epi32(2));
    return _mm512_mask_sub_epi32(next, left, next, _mm512_set1_epi32(1));
}

static inline void perfect_tree_vec(const float *xt, const pnode32_t *tree, int32_t depth,
                                    int nv, int32_t *leaf) {
    const float *tf = (const float *)tree;
    const int32_t *ti = (const int32_t *)tree;
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i two = _mm512_set1_epi32(2);
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_add_epi32(evens, one);
    __m512i idx[BLOCK / 16];
    if (depth == 0) {
        for (int v = 0; v < nv; v++) _mm512_storeu_si512(leaf + 16 * v, _mm512_setzero_si512());
        return;
    }
    {
        const __m512 t = _mm512_set1_ps(tf[0]);
        const float *col = xt + (int64_t)(ti[1] & 0x7fffffff) * BLOCK;
        for (int v = 0; v < nv; v++) {
            __mmask16 left = _mm512_cmp_ps_mask(_mm512_loadu_ps(col + 16 * v), t, _CMP_LE_OQ);
            idx[v] = _mm512_mask_blend_epi32(left, two, one);
        }
    }
    for (int32_t d = 1; d < depth; d++) {
        const int32_t base = (1 << d) - 1, count = 1 << d;
        const __m512i vbase = _mm512_set1_epi32(base);
        if (count <= 128) {
            /* The level's nodes as up to four 16-entry tables of thresholds and features. */
            const float *p = tf + 2 * base;
            __m512 thr[8];
            __m512i feat[8];
            for (int q = 0; q < 8; q++) {
                int32_t n2 = 2 * count - 32 * q; /* floats of this level left from table q */
                if (n2 <= 0) {
                    thr[q] = thr[0], feat[q] = feat[0];
                    continue;
                }
                __mmask16 m0 = (__mmask16)(n2 >= 16 ? 0xffff : (1u << n2) - 1);
                __mmask16 m1 = (__mmask16)(n2 >= 32 ? 0xffff : n2 > 16 ? (1u << (n2 - 16)) - 1 : 0);
                __m512 a = _mm512_maskz_loadu_ps(m0, p + 32 * q);
                __m512 b = _mm512_maskz_loadu_ps(m1, p + 32 * q + 16);
                thr[q] = _mm512_permutex2var_ps(a, evens, b);
                feat[q] = _mm512_and_si512(
                    _mm512_permutex2var_epi32(_mm512_castps_si512(a), odds, _mm512_castps_si512(b)),
                    absmask);
            }
            for (int v = 0; v < nv; v++) {
                __m512i r = _mm512_sub_epi32(idx[v], vbase);
                __m512 t;
                __m512i f;
                if (count <= 16) {
                    t = _mm512_permutexvar_ps(r, thr[0]);
                    f = _mm512_permutexvar_epi32(r, feat[0]);
                } else if (count == 32) {
                    t = _mm512_permutex2var_ps(thr[0], r, thr[1]);
                    f = _mm512_permutex2var_epi32(feat[0], r, feat[1]);
                } else if (count == 128) {
                    __mmask16 hi = _mm512_test_epi32_mask(r, _mm512_set1_epi32(32));
                    __mmask16 h2 = _mm512_test_epi32_mask(r, _mm512_set1_epi32(64));
                    __m512 t0 = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(thr[0], r, thr[1]),
                                             _mm512_permutex2var_ps(thr[2], r, thr[3]));
                    __m512 t1 = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(thr[4], r, thr[5]),
                                             _mm512_permutex2var_ps(thr[6], r, thr[7]));
                    t = _mm512_mask_blend_ps(h2, t0, t1);
                    __m512i f0 = _mm512_mask_blend_epi32(hi, _mm512_permutex2var_epi32(feat[0], r, feat[1]),
                                                _mm512_permutex2var_epi32(feat[2], r, feat[3]));
                    __m512i f1 = _mm512_mask_blend_epi32(hi, _mm512_permutex2var_epi32(feat[4], r, feat[5]),
                                                _mm512_permutex2var_epi32(feat[6], r, feat[7]));
                    f = _mm512_mask_blend_epi32(h2, f0, f1);
                } else {
                    __mmask16 hi = _mm512_test_epi32_mask(r, _mm512_set1_epi32(32));
                    t = _mm512_mask_blend_ps(hi, _mm512_permutex2var_ps(thr[0], r, thr[1]),
                                             _mm512_permutex2var_ps(thr[2], r, thr[3]));
                    f = _mm512_mask_blend_epi32(hi, _mm512_permutex2var_epi32(feat[0], r, feat[1]),
                                                _mm512_permutex2var_epi32(feat[2], r, feat[3]));
                }
                idx[v] = step16(xt, v, idx[v], t, f);
            }
        } else {
            for (int v = 0; v < nv; v++) {
                __m512 t = _mm512_i32gather_ps(idx[v], tf, 8);
                __m512i f = _mm512_and_si512(_mm512_i32gather_epi32(idx[v], ti + 1, 8), absmask);
                idx[v] = step16(xt, v, idx[v], t, f);
            }
        }
    }
    for (int v = 0; v < nv; v++) _mm512_storeu_si512(leaf + 16 * v, idx[v]);
}

/* acc[c * BLOCK + k] += tv[leaf[k] * width + j] for the tree's columns c = g + j, eight
 * rows a gather; the same additions, in the same order, as the scalar loop. LOAD, ADD
 * and STORE work on eight sums of type T; CVT turns eight gathered doubles into them. */
#define ACCUMULATE(NAME, T, LOAD, ADD, STORE, CVT)                                         \
    static inline void NAME(T *acc, const int32_t *leaf, const double *tv, int64_t width,  \
                            int32_t g, int rows) {                                         \
        const __m256i w = _mm256_set1_epi32((int32_t)width);                               \
        for (int64_t j = 0; j < width; j++) {                                              \
            T *a = acc + (g + j) * BLOCK;                                                  \
            const __m256i vj = _mm256_set1_epi32((int32_t)j);                              \
            for (int k = 0; k < rows; k += 8) {                                            \
                __m256i at = _mm256_add_epi32(                                             \
                    _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(leaf + k)), w), \
                    vj);                                                                   \
                STORE(a + k, ADD(LOAD(a + k), CVT(_mm512_i32gather_pd(at, tv, 8))));       \
            }                                                                              \
        }                                                                                  \
    }
#define AS_IS(v) (v)
ACCUMULATE(accumulate_f64, double, _mm512_loadu_pd, _mm512_add_pd, _mm512_storeu_pd, AS_IS)
ACCUMULATE(accumulate_f32, float, _mm256_loadu_ps, _mm256_add_ps, _mm256_storeu_ps,
           _mm512_cvtpd_ps)
#else
#define HAVE_VECTOR 0
static inline void accumulate_f64(double *acc, const int32_t *leaf, const double *tv,
                                  int64_t width, int32_t g, int rows) {
    (void)acc, (void)leaf, (void)tv, (void)width, (void)g, (void)rows;
}
static inline void accumulate_f32(float *acc, const int32_t *leaf, const double *tv,
                                  int64_t width, int32_t g, int rows) {
    (void)acc, (void)leaf, (void)tv, (void)width, (void)g, (void)rows;
}
static inline void perfect_tree_vec(const float *xt, const pnode32_t *tree, int32_t depth,
                                    int nv, int32_t *leaf) {
    (void)xt, (void)tree, (void)depth, (void)nv, (void)leaf;
}
#endif

/* VEC: the vector walk is available for this input type (float32, AVX-512). Its block
 * works on a transposed copy of the rows (xt) and of their sums (acc, column-major), kept
 * in one heap buffer; without the buffer the scalar walk does the job. */
#define PERFECT(NAME, XT, NT, ACC, NAN, VEC)                                               \
    void NAME(const XT *x, int64_t n, int64_t nf, const NT *nodes, const int32_t *roots,  \
              const int32_t *depths, const int32_t *groups, const int32_t *leafbase,      \
              int64_t ntrees, const double *values, int64_t width, int64_t nout,           \
              ACC *out) {                                                                  \
        int32_t idx[BLOCK];                                                                \
        float *xt = 0;                                                                     \
        ACC *acc = 0;                                                                      \
        if (VEC && nf * BLOCK < INT32_MAX) {                                               \
            size_t xbytes = ((size_t)(nf * BLOCK) * sizeof(float) + 63) & ~(size_t)63;     \
            xt = malloc(xbytes + (size_t)(nout * BLOCK) * sizeof(ACC));                    \
            acc = xt ? (ACC *)(void *)((char *)xt + xbytes) : 0;                           \
        }                                                                                  \
        for (int64_t r0 = 0; r0 < n; r0 += BLOCK) {                                        \
            int64_t nb = n - r0 < BLOCK ? n - r0 : BLOCK;                                  \
            const XT *xb = x + r0 * nf;                                                    \
            ACC *ob = out + r0 * nout;                                                     \
            int32_t has_nan = 0;                                                           \
            if (NAN)                                                                       \
                for (int64_t j = 0; j < nb * nf; j++) has_nan |= xb[j] != xb[j];           \
            int nv = (int)((nb + 15) / 16); /* vectors of 16 rows in this block */        \
            if (xt && !has_nan && nb >= VEC_MIN_ROWS) {                                    \
                for (int64_t k = 0; k < 16 * nv; k++) {                                    \
                    for (int64_t f = 0; f < nf; f++)                                       \
                        xt[f * BLOCK + k] = k < nb ? (float)xb[k * nf + f] : 0.0f;         \
                    for (int64_t c = 0; c < nout; c++)                                     \
                        acc[c * BLOCK + k] = k < nb ? ob[k * nout + c] : 0;                \
                }                                                                          \
                for (int64_t t = 0; t < ntrees; t++) {                                     \
                    int32_t depth = depths[t];                                             \
                    perfect_tree_vec(xt, (const pnode32_t *)(const void *)(nodes + roots[t]), \
                                     depth, nv, idx);                                      \
                    const double *tv =                                                     \
                        values + ((int64_t)leafbase[t] - ((1 << depth) - 1)) * width;      \
                    if (sizeof(ACC) == 8)                                                  \
                        accumulate_f64((double *)(void *)acc, idx, tv, width, groups[t], 16 * nv); \
                    else                                                                   \
                        accumulate_f32((float *)(void *)acc, idx, tv, width, groups[t], 16 * nv); \
                }                                                                          \
                for (int64_t k = 0; k < nb; k++)                                           \
                    for (int64_t c = 0; c < nout; c++) ob[k * nout + c] = acc[c * BLOCK + k]; \
                continue;                                                                  \
            }                                                                              \
            for (int64_t t = 0; t < ntrees; t++) {                                         \
                const NT *tree = nodes + roots[t];                                         \
                int32_t depth = depths[t];                                                 \
                for (int64_t k = 0; k < nb; k++) idx[k] = 0;                               \
                if (has_nan) {                                                             \
                    PERFECT_STEP(XT, NT, 1)                                                \
                } else {                                                                   \
                    PERFECT_STEP(XT, NT, 0)                                                \
                }                                                                          \
                const double *tv = values + ((int64_t)leafbase[t] - ((1 << depth) - 1)) * width; \
                ADD_LEAVES(ACC, tv)                                                        \
            }                                                                              \
        }                                                                                  \
        free(xt);                                                                          \
    }

PERFECT(shipyard_perfect_f32_f64, float, pnode32_t, double, 0, HAVE_VECTOR)
PERFECT(shipyard_perfect_f32_f32, float, pnode32_t, float, 0, HAVE_VECTOR)
PERFECT(shipyard_perfect_f64_f64, double, pnode64_t, double, 0, 0)
PERFECT(shipyard_perfect_f64_f32, double, pnode64_t, float, 0, 0)
PERFECT(shipyard_perfect_f32_f64_nan, float, pnode32_t, double, 1, HAVE_VECTOR)
PERFECT(shipyard_perfect_f32_f32_nan, float, pnode32_t, float, 1, HAVE_VECTOR)
PERFECT(shipyard_perfect_f64_f64_nan, double, pnode64_t, double, 1, 0)
PERFECT(shipyard_perfect_f64_f32_nan, double, pnode64_t, float, 1, 0)

/* shipyard_trees_<input and node precision>_<sum precision>[_nan] */
KERNEL(shipyard_trees_f32_f64, float, node32_t, double, 0)
KERNEL(shipyard_trees_f32_f32, float, node32_t, float, 0)
KERNEL(shipyard_trees_f64_f64, double, node64_t, double, 0)
KERNEL(shipyard_trees_f64_f32, double, node64_t, float, 0)
KERNEL(shipyard_trees_f32_f64_nan, float, node32_t, double, 1)
KERNEL(shipyard_trees_f32_f32_nan, float, node32_t, float, 1)
KERNEL(shipyard_trees_f64_f64_nan, double, node64_t, double, 1)
KERNEL(shipyard_trees_f64_f32_nan, double, node64_t, float, 1)

int shipyard_trees_abi(void) { return 5; }

/* 1 when the vector walk is compiled in (AVX-512), else 0. */
int shipyard_trees_vector(void) { return HAVE_VECTOR; }
