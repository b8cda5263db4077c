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
 * - the conversion: w * 10^q with w < 2^64 and |q| <= 27. Clinger's fast path when
 *   w <= 2^53 and |q| <= 22 (both exact doubles, one rounding); else Eisel-Lemire's
 *   algorithm (w times a 128-bit power of five, see eisel_lemire), which is always
 *   correctly rounded in this range: nothing is given up, on any CPU (an x87 long double
 *   did this before: slower, refused the rare exact midpoints, and absent off x86).
 * Compiled without -ffast-math: every operation must round as written.
 */
#include <stdint.h>
#include <string.h>

static const double P10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 5^q for q in [-27, 27], normalised to 128 bits (the top bit set): exact for q >= 0;
 * for q < 0, floor(2^b / 5^-q) + 1 with b such that the result has 128 bits. Generated
 * by the Python of the Eisel-Lemire paper's table script (fast_float's
 * script/table_generation.py) restricted to this range:
 *   q < 0: z = bit length of 5^-q rounded up; c = 2**(z + 127) // 5**-q + 1
 *   q >= 0: c = 5**q shifted left until 2**127 <= c < 2**128 */
static const uint64_t P5[55][2] = {
    {UINT64_C(0x9e74d1b791e07e48), UINT64_C(0x775ea264cf55347e)}, /* 5^-27 */
    {UINT64_C(0xc612062576589dda), UINT64_C(0x95364afe032a819e)}, /* 5^-26 */
    {UINT64_C(0xf79687aed3eec551), UINT64_C(0x3a83ddbd83f52205)}, /* 5^-25 */
    {UINT64_C(0x9abe14cd44753b52), UINT64_C(0xc4926a9672793543)}, /* 5^-24 */
    {UINT64_C(0xc16d9a0095928a27), UINT64_C(0x75b7053c0f178294)}, /* 5^-23 */
    {UINT64_C(0xf1c90080baf72cb1), UINT64_C(0x5324c68b12dd6339)}, /* 5^-22 */
    {UINT64_C(0x971da05074da7bee), UINT64_C(0xd3f6fc16ebca5e04)}, /* 5^-21 */
    {UINT64_C(0xbce5086492111aea), UINT64_C(0x88f4bb1ca6bcf585)}, /* 5^-20 */
    {UINT64_C(0xec1e4a7db69561a5), UINT64_C(0x2b31e9e3d06c32e6)}, /* 5^-19 */
    {UINT64_C(0x9392ee8e921d5d07), UINT64_C(0x3aff322e62439fd0)}, /* 5^-18 */
    {UINT64_C(0xb877aa3236a4b449), UINT64_C(0x09befeb9fad487c3)}, /* 5^-17 */
    {UINT64_C(0xe69594bec44de15b), UINT64_C(0x4c2ebe687989a9b4)}, /* 5^-16 */
    {UINT64_C(0x901d7cf73ab0acd9), UINT64_C(0x0f9d37014bf60a11)}, /* 5^-15 */
    {UINT64_C(0xb424dc35095cd80f), UINT64_C(0x538484c19ef38c95)}, /* 5^-14 */
    {UINT64_C(0xe12e13424bb40e13), UINT64_C(0x2865a5f206b06fba)}, /* 5^-13 */
    {UINT64_C(0x8cbccc096f5088cb), UINT64_C(0xf93f87b7442e45d4)}, /* 5^-12 */
    {UINT64_C(0xafebff0bcb24aafe), UINT64_C(0xf78f69a51539d749)}, /* 5^-11 */
    {UINT64_C(0xdbe6fecebdedd5be), UINT64_C(0xb573440e5a884d1c)}, /* 5^-10 */
    {UINT64_C(0x89705f4136b4a597), UINT64_C(0x31680a88f8953031)}, /* 5^-9 */
    {UINT64_C(0xabcc77118461cefc), UINT64_C(0xfdc20d2b36ba7c3e)}, /* 5^-8 */
    {UINT64_C(0xd6bf94d5e57a42bc), UINT64_C(0x3d32907604691b4d)}, /* 5^-7 */
    {UINT64_C(0x8637bd05af6c69b5), UINT64_C(0xa63f9a49c2c1b110)}, /* 5^-6 */
    {UINT64_C(0xa7c5ac471b478423), UINT64_C(0x0fcf80dc33721d54)}, /* 5^-5 */
    {UINT64_C(0xd1b71758e219652b), UINT64_C(0xd3c36113404ea4a9)}, /* 5^-4 */
    {UINT64_C(0x83126e978d4fdf3b), UINT64_C(0x645a1cac083126ea)}, /* 5^-3 */
    {UINT64_C(0xa3d70a3d70a3d70a), UINT64_C(0x3d70a3d70a3d70a4)}, /* 5^-2 */
    {UINT64_C(0xcccccccccccccccc), UINT64_C(0xcccccccccccccccd)}, /* 5^-1 */
    {UINT64_C(0x8000000000000000), UINT64_C(0x0000000000000000)}, /* 5^0 */
    {UINT64_C(0xa000000000000000), UINT64_C(0x0000000000000000)}, /* 5^1 */
    {UINT64_C(0xc800000000000000), UINT64_C(0x0000000000000000)}, /* 5^2 */
    {UINT64_C(0xfa00000000000000), UINT64_C(0x0000000000000000)}, /* 5^3 */
    {UINT64_C(0x9c40000000000000), UINT64_C(0x0000000000000000)}, /* 5^4 */
    {UINT64_C(0xc350000000000000), UINT64_C(0x0000000000000000)}, /* 5^5 */
    {UINT64_C(0xf424000000000000), UINT64_C(0x0000000000000000)}, /* 5^6 */
    {UINT64_C(0x9896800000000000), UINT64_C(0x0000000000000000)}, /* 5^7 */
    {UINT64_C(0xbebc200000000000), UINT64_C(0x0000000000000000)}, /* 5^8 */
    {UINT64_C(0xee6b280000000000), UINT64_C(0x0000000000000000)}, /* 5^9 */
    {UINT64_C(0x9502f90000000000), UINT64_C(0x0000000000000000)}, /* 5^10 */
    {UINT64_C(0xba43b74000000000), UINT64_C(0x0000000000000000)}, /* 5^11 */
    {UINT64_C(0xe8d4a51000000000), UINT64_C(0x0000000000000000)}, /* 5^12 */
    {UINT64_C(0x9184e72a00000000), UINT64_C(0x0000000000000000)}, /* 5^13 */
    {UINT64_C(0xb5e620f480000000), UINT64_C(0x0000000000000000)}, /* 5^14 */
    {UINT64_C(0xe35fa931a0000000), UINT64_C(0x0000000000000000)}, /* 5^15 */
    {UINT64_C(0x8e1bc9bf04000000), UINT64_C(0x0000000000000000)}, /* 5^16 */
    {UINT64_C(0xb1a2bc2ec5000000), UINT64_C(0x0000000000000000)}, /* 5^17 */
    {UINT64_C(0xde0b6b3a76400000), UINT64_C(0x0000000000000000)}, /* 5^18 */
    {UINT64_C(0x8ac7230489e80000), UINT64_C(0x0000000000000000)}, /* 5^19 */
    {UINT64_C(0xad78ebc5ac620000), UINT64_C(0x0000000000000000)}, /* 5^20 */
    {UINT64_C(0xd8d726b7177a8000), UINT64_C(0x0000000000000000)}, /* 5^21 */
    {UINT64_C(0x878678326eac9000), UINT64_C(0x0000000000000000)}, /* 5^22 */
    {UINT64_C(0xa968163f0a57b400), UINT64_C(0x0000000000000000)}, /* 5^23 */
    {UINT64_C(0xd3c21bcecceda100), UINT64_C(0x0000000000000000)}, /* 5^24 */
    {UINT64_C(0x84595161401484a0), UINT64_C(0x0000000000000000)}, /* 5^25 */
    {UINT64_C(0xa56fa5b99019a5c8), UINT64_C(0x0000000000000000)}, /* 5^26 */
    {UINT64_C(0xcecb8f27f4200f3a), UINT64_C(0x0000000000000000)}, /* 5^27 */
};

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

/* w * 10^q correctly rounded, for w != 0 and q in [-27, 27] (Eisel-Lemire, as in
 * fast_float's compute_float<binary64>): w, normalised, times the 128-bit 5^q gives the
 * 53 bits and the rounding direction; the second product is needed only when the low
 * bits of the first leave it open, and with it the result is always right (Mushtak and
 * Lemire, "Fast Number Parsing Without Fallback", 2023). No subnormal, zero or infinite
 * result can come from this range. */
static double eisel_lemire(uint64_t w, int32_t q) {
    const uint64_t *p5 = P5[q + 27];
    int lz = __builtin_clzll(w);
    w <<= lz;
    unsigned __int128 first = (unsigned __int128)w * p5[0];
    uint64_t hi = (uint64_t)(first >> 64), lo = (uint64_t)first;
    if ((hi & 0x1FF) == 0x1FF) { /* 64 - 52 - 3 = 9 bits below the rounding bit */
        uint64_t second = (uint64_t)(((unsigned __int128)w * p5[1]) >> 64);
        lo += second;
        hi += lo < second;
    }
    int upperbit = (int)(hi >> 63);
    int shift = upperbit + 64 - 52 - 3;
    uint64_t mantissa = hi >> shift;
    int32_t power2 = (int32_t)((((152170 + 65536) * q) >> 16) + 63) + upperbit - lz + 1023;
    /* Exactly half-way (only possible while 5^q is exact: q in [-4, 23]): to even. */
    if (lo <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1 && (mantissa << shift) == hi)
        mantissa &= ~UINT64_C(1);
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= (UINT64_C(2) << 52)) {
        mantissa = UINT64_C(1) << 52;
        power2++;
    }
    mantissa &= ~(UINT64_C(1) << 52);
    uint64_t bits = mantissa | ((uint64_t)power2 << 52);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
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
        if (q < -27 || q > 27) return 0;
        d = eisel_lemire(w, q);
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
