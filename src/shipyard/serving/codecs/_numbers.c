/* A flat JSON array of numbers straight into float64, for the V2 decoder's fast path.
 *
 * orjson builds one Python float per number and numpy then walks the list again to
 * find its dtype and copy it: about two thirds of decoding a 100-row request. This
 * parses the array's bytes in one pass into a caller's buffer. It accepts only what
 * it can convert exactly as Python does (the correctly rounded nearest double) and
 * gives up on anything else, and the caller then takes the ordinary path, which keeps
 * every error message for malformed input:
 *
 * - strict JSON numbers only (no NaN, Infinity, leading '+', '01', '1.', '.5'), JSON
 *   whitespace, no nesting: a nested or non-numeric array is not this parser's;
 * - at most 19 significant digits; integers (no '.' or exponent) at most 15 digits, so
 *   int64 -> float conversions on the ordinary path give the same value, and an
 *   integer zero is +0.0 there ("-0" is the int 0);
 * - the conversion: w * 10^q with w < 2^64. Clinger's fast path when w <= 2^53 and
 *   |q| <= 22 (both exact doubles, one rounding). Else, with an x87 80-bit long double,
 *   w and 10^|q| (|q| <= 27) are exact, so the product or quotient is correctly rounded
 *   to 64 bits; rounding that again to 53 bits is correct unless the 64-bit result
 *   lies exactly on a midpoint between two doubles (low 11 bits 0x400): then give up.
 * Compiled without -ffast-math: every operation must round as written.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

static const double P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if LDBL_MANT_DIG == 64
/* 10^k, exact in 64 bits up to 10^27 (5^27 < 2^64). */
static const long double P10L[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
#endif

#define SKIP_WS(p, e)                                                                  \
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++

/* Eight ASCII digits at once (little-endian load): SWAR, as fast_float does. */
static inline int eight_digits(const char *p, const char *e, uint64_t *v) {
    if (e - p < 8) return 0;
    uint64_t x;
    memcpy(&x, p, 8);
    if (((x & UINT64_C(0xF0F0F0F0F0F0F0F0)) |
         (((x + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0)) >> 4)) !=
        UINT64_C(0x3333333333333333))
        return 0;
    x -= UINT64_C(0x3030303030303030);
    x = x * 10 + (x >> 8);
    const uint64_t mask = UINT64_C(0x000000FF000000FF);
    x = (((x & mask) * UINT64_C(0x000F424000000064)) +
         (((x >> 16) & mask) * UINT64_C(0x0000271000000001))) >> 32;
    *v = x;
    return 1;
}

/* The value of one token, or 0 when it cannot be converted exactly here. */
static int convert(uint64_t w, int32_t q, int neg, int integer, double *out) {
    double d;
    if (w == 0) {
        d = (neg && !integer) ? -0.0 : 0.0;
        *out = d;
        return 1;
    }
    if (w <= (UINT64_C(1) << 53) && q >= -22 && q <= 22) {
        d = q >= 0 ? (double)w * P10[q] : (double)w / P10[-q];
    } else {
#if LDBL_MANT_DIG == 64
        if (q < -27 || q > 27) return 0;
        long double p = P10L[q < 0 ? -q : q];
        long double r = q >= 0 ? (long double)w * p : (long double)w / p;
        uint64_t mant;
        memcpy(&mant, &r, sizeof mant); /* x87 layout: the 64-bit significand first */
        if ((mant & 0x7FF) == 0x400) return 0;
        d = (double)r;
#else
        return 0;
#endif
    }
    *out = neg ? -d : d;
    return 1;
}

/* Parse the array that starts at s[pos] ('['). Returns the count of values written to
 * out (at most cap) and sets *end to the offset just past ']'; -1 when the array is not
 * one this parser converts (the caller takes the ordinary path). */
int64_t shipyard_json_f64(const char *s, int64_t len, int64_t pos, double *out, int64_t cap,
                          int64_t *end) {
    const char *p = s + pos, *e = s + len;
    int64_t n = 0;
    if (p >= e || *p != '[') return -1;
    p++;
    SKIP_WS(p, e);
    if (p < e && *p == ']') {
        *end = (int64_t)(p + 1 - s);
        return 0;
    }
    for (;;) {
        int neg = 0, integer = 1, digits = 0;
        uint64_t w = 0;
        int32_t q = 0;
        if (p < e && *p == '-') neg = 1, p++;
        if (p >= e || *p < '0' || *p > '9') return -1;
        if (*p == '0') {
            p++;
            if (p < e && *p >= '0' && *p <= '9') return -1; /* leading zero */
        } else {
            while (p < e && *p >= '0' && *p <= '9') {
                if (++digits > 19) return -1;
                w = w * 10 + (uint64_t)(*p++ - '0');
            }
        }
        if (p < e && *p == '.') {
            integer = 0;
            p++;
            if (p >= e || *p < '0' || *p > '9') return -1;
            if (w == 0) /* leading zeros of 0.00x are not significant */
                while (p < e && *p == '0') q--, p++;
            uint64_t eight;
            while (digits <= 11 && eight_digits(p, e, &eight)) {
                w = w * 100000000 + eight;
                digits += 8, q -= 8, p += 8;
            }
            while (p < e && *p >= '0' && *p <= '9') {
                if (++digits > 19) return -1;
                w = w * 10 + (uint64_t)(*p++ - '0');
                q--;
            }
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
            integer = 0;
            int eneg = 0;
            int32_t x = 0;
            p++;
            if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
            if (p >= e || *p < '0' || *p > '9') return -1;
            while (p < e && *p >= '0' && *p <= '9') {
                if (x < 100000) x = x * 10 + (*p - '0');
                p++;
            }
            q += eneg ? -x : x;
        }
        if (integer && digits > 15) return -1;
        if (n >= cap || !convert(w, q, neg, integer, out + n)) return -1;
        n++;
        SKIP_WS(p, e);
        if (p >= e) return -1;
        if (*p == ']') {
            *end = (int64_t)(p + 1 - s);
            return n;
        }
        if (*p != ',') return -1;
        p++;
        SKIP_WS(p, e);
    }
}

int shipyard_numbers_abi(void) { return 1; }
