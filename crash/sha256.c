/* SPDX-License-Identifier: BSD-2-Clause */
/* sha256.c — SHA-256 (FIPS 180-4) for the crash-time integrity check of the kdump segments:
 * streaming, no tables beyond the round constants, a 16-word message window on the stack. */
#include "cp/internal.h"

static const uint32_t round_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned int n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One 64-byte block. W[t] for t >= 16 is computed in place over a rolling
 * window of 16 words, which keeps the frame small enough for crash time. */
static void compress(uint32_t h[8], const uint8_t *block)
{
    uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];

    for (unsigned int t = 0; t < 64; t++) {
        uint32_t wt, t1, t2;

        if (t < 16) {
            wt = be32(block + 4ul * t);
        } else {
            uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];

            wt = w[t & 15] + (rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)) + w[(t - 7) & 15] +
                 (rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10));
        }
        w[t & 15] = wt;
        t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + round_k[t] + wt;
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void cp_sha256(const void *data, uint64_t len, uint8_t digest[32])
{
    static const uint32_t init[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    const uint8_t *p = data;
    uint8_t tail[64];
    uint32_t h[8];
    uint64_t full = len & ~63ull, rest = len - full;

    for (unsigned int i = 0; i < 8; i++)
        h[i] = init[i];
    for (uint64_t off = 0; off < full; off += 64)
        compress(h, p + off);
    /* Padding: 0x80, zeros, the bit length big-endian in the last 8 bytes,
     * spilling into a second block when fewer than 9 bytes are left. */
    for (unsigned int i = 0; i < 64; i++)
        tail[i] = i < rest ? p[full + i] : 0;
    tail[rest] = 0x80;
    if (rest >= 56) {
        compress(h, tail);
        for (unsigned int i = 0; i < 64; i++)
            tail[i] = 0;
    }
    for (unsigned int i = 0; i < 8; i++)
        tail[63 - i] = (uint8_t)((len * 8) >> (8 * i));
    compress(h, tail);
    for (unsigned int i = 0; i < 8; i++) {
        uint8_t *d = digest + 4ul * i;

        d[0] = (uint8_t)(h[i] >> 24);
        d[1] = (uint8_t)(h[i] >> 16);
        d[2] = (uint8_t)(h[i] >> 8);
        d[3] = (uint8_t)h[i];
    }
}
