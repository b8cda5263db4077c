/* Shipyard's tree-ensemble evaluator: one generic kernel over flat node arrays.
 *
 * Nodes are laid out so that the two children of a node are adjacent (right = left + 1);
 * a step is then branch-free: idx = left + go_right. A leaf points to itself with an
 * infinite threshold, so a block of rows walks a tree level by level without testing
 * for leaves, until no row moved. Rows are processed in blocks of BLOCK: the block's
 * features stay in L1 while every tree visits it, and the BLOCK independent walks of
 * one tree hide each other's memory latency.
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

#define BLOCK 64

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
                int32_t g = groups[t];                                                     \
                for (int64_t k = 0; k < nb; k++) {                                         \
                    const double *lv = values + (int64_t)idx[k] * width;                   \
                    ACC *o = ob + k * nout + g;                                            \
                    for (int64_t j = 0; j < width; j++) o[j] += (ACC)lv[j];                \
                }                                                                          \
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

#define PERFECT(NAME, XT, NT, ACC, NAN)                                                    \
    void NAME(const XT *x, int64_t n, int64_t nf, const NT *nodes, const int32_t *roots,  \
              const int32_t *depths, const int32_t *groups, const int32_t *leafbase,      \
              int64_t ntrees, const double *values, int64_t width, int64_t nout,           \
              ACC *out) {                                                                  \
        int32_t idx[BLOCK];                                                                \
        for (int64_t r0 = 0; r0 < n; r0 += BLOCK) {                                        \
            int64_t nb = n - r0 < BLOCK ? n - r0 : BLOCK;                                  \
            const XT *xb = x + r0 * nf;                                                    \
            ACC *ob = out + r0 * nout;                                                     \
            int32_t has_nan = 0;                                                           \
            if (NAN)                                                                       \
                for (int64_t j = 0; j < nb * nf; j++) has_nan |= xb[j] != xb[j];           \
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
                int32_t g = groups[t];                                                     \
                for (int64_t k = 0; k < nb; k++) {                                         \
                    const double *lv = tv + (int64_t)idx[k] * width;                       \
                    ACC *o = ob + k * nout + g;                                            \
                    for (int64_t j = 0; j < width; j++) o[j] += (ACC)lv[j];                \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

PERFECT(shipyard_perfect_f32_f64, float, pnode32_t, double, 0)
PERFECT(shipyard_perfect_f32_f32, float, pnode32_t, float, 0)
PERFECT(shipyard_perfect_f64_f64, double, pnode64_t, double, 0)
PERFECT(shipyard_perfect_f64_f32, double, pnode64_t, float, 0)
PERFECT(shipyard_perfect_f32_f64_nan, float, pnode32_t, double, 1)
PERFECT(shipyard_perfect_f32_f32_nan, float, pnode32_t, float, 1)
PERFECT(shipyard_perfect_f64_f64_nan, double, pnode64_t, double, 1)
PERFECT(shipyard_perfect_f64_f32_nan, double, pnode64_t, float, 1)

/* shipyard_trees_<input and node precision>_<sum precision>[_nan] */
KERNEL(shipyard_trees_f32_f64, float, node32_t, double, 0)
KERNEL(shipyard_trees_f32_f32, float, node32_t, float, 0)
KERNEL(shipyard_trees_f64_f64, double, node64_t, double, 0)
KERNEL(shipyard_trees_f64_f32, double, node64_t, float, 0)
KERNEL(shipyard_trees_f32_f64_nan, float, node32_t, double, 1)
KERNEL(shipyard_trees_f32_f32_nan, float, node32_t, float, 1)
KERNEL(shipyard_trees_f64_f64_nan, double, node64_t, double, 1)
KERNEL(shipyard_trees_f64_f32_nan, double, node64_t, float, 1)

int shipyard_trees_abi(void) { return 4; }
