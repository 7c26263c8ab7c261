/*
 * jpeg_refine.c: a faster decoder for the AC refinement scans of progressive JPEGs.
 *
 * Why: libjpeg-turbo's decode_mcu_AC_refine was 31-53% of a whole render of the progressive
 * bench photos (perf). For every block it walks all positions of the band, a load and a branch
 * each, to find the nonzero coefficients that take a correction bit, and it branches on each
 * of those bits, which are coin flips.
 *
 * Here each block's nonzero coefficients are found with SSE2 compares and turned into a bit
 * mask in zigzag order (eight table lookups); correction bits are read up to 32 at a time and
 * applied without a branch; with BMI2 (checked at run time) the zero coefficient that ends a
 * run is found with one pdep instead of a loop as long as the run. Measured on a 6.3 MP
 * progressive photo to 400 px WebP: 65.6 -> 47.1 ms for the whole render. (A decoder for AC
 * first scans with an inline bit-buffer refill, as libjpeg-turbo's baseline decoder has, was
 * tried as well and gained nothing.)
 *
 * At 1/8 scale the AC scans of components whose blocks the IDCT scales to 1x1 (luma, and
 * chroma unless it is subsampled in both directions) are not decoded at all:
 * catg_jpeg_skip_unused_scan jumps over their data. A 16 MP progressive photo to 400 px WebP:
 * 52 -> 28 ms.
 *
 * How it plugs in: libjpeg selects a scan's decoder in start_pass_phuff_decoder, then calls
 * the progress monitor before it decodes the scan's first MCU; catg_jpeg_refine_install
 * (called from that monitor) swaps in decode_mcu for Huffman-coded refinement scans without
 * restart markers. Everything else (Huffman tables, the bit reader's refills, markers, errors,
 * the other scans) stays libjpeg's own, through its exported helpers.
 *
 * The decoder reads libjpeg's private entropy state, so its layout is mirrored below from
 * libjpeg-turbo 3.1.0 (jpegint.h, jdhuff.h, jdphuff.c). build.rs defines CATG_FAST_REFINE
 * only when the headers say 3.1.0; any other version keeps libjpeg's decoder (and the test
 * that checks the fast path is taken fails, so a silent fallback cannot go unnoticed). The
 * output is bit-identical to libjpeg's: see the tests in jpeg_rows.rs (the one difference: a
 * skipped scan's damage is not found, since it cannot show).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

int catg_jpeg_refine_install(j_decompress_ptr cinfo, int allow_bmi2);
int catg_jpeg_skip_unused_scan(j_decompress_ptr cinfo);

#if defined(CATG_FAST_REFINE) && LIBJPEG_TURBO_VERSION_NUMBER == 3001000 && SIZE_MAX == UINT64_MAX

#include <pthread.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- mirrored from libjpeg-turbo 3.1.0 ---- */

typedef long JLONG;

struct jpeg_entropy_decoder { /* jpegint.h */
  void (*start_pass)(j_decompress_ptr cinfo);
  boolean (*decode_mcu)(j_decompress_ptr cinfo, JBLOCKROW *MCU_data);
  JDIMENSION (*decode_mcus)(j_decompress_ptr cinfo, void *diff_buf, JDIMENSION MCU_row_num,
                            JDIMENSION MCU_col_num, JDIMENSION nMCU);
  boolean (*process_restart)(j_decompress_ptr cinfo);
  boolean insufficient_data;
};

typedef struct { /* jdhuff.h */
  JLONG maxcode[18];
  JLONG valoffset[18];
  JHUFF_TBL *pub;
  int lookup[1 << 8];
} d_derived_tbl;

typedef size_t bit_buf_type; /* jdhuff.h, 64-bit targets */

typedef struct {
  bit_buf_type get_buffer;
  int bits_left;
} bitread_perm_state;

typedef struct {
  const JOCTET *next_input_byte;
  size_t bytes_in_buffer;
  bit_buf_type get_buffer;
  int bits_left;
  j_decompress_ptr cinfo;
} bitread_working_state;

typedef struct { /* jdphuff.c */
  unsigned int EOBRUN;
  int last_dc_val[MAX_COMPS_IN_SCAN];
} savable_state;

typedef struct {
  struct jpeg_entropy_decoder pub;
  bitread_perm_state bitstate;
  savable_state saved;
  unsigned int restarts_to_go;
  d_derived_tbl *derived_tbls[NUM_HUFF_TBLS];
  d_derived_tbl *ac_derived_tbl;
} phuff_entropy_decoder;

extern boolean jpeg_fill_bit_buffer(bitread_working_state *state, bit_buf_type get_buffer, int bits_left,
                                    int nbits);
extern int jpeg_huff_decode(bitread_working_state *state, bit_buf_type get_buffer, int bits_left,
                            d_derived_tbl *htbl, int min_bits);
extern const int jpeg_natural_order[]; /* zigzag index -> natural index, 64 + 16 safety entries */

#define HUFF_LOOKAHEAD 8

/* The bit-reader macros of jdhuff.h, unchanged. */
#define BITREAD_LOAD_STATE(cinfop, permstate)                \
  br_state.cinfo = cinfop;                                   \
  br_state.next_input_byte = cinfop->src->next_input_byte;   \
  br_state.bytes_in_buffer = cinfop->src->bytes_in_buffer;   \
  get_buffer = permstate.get_buffer;                         \
  bits_left = permstate.bits_left;

#define BITREAD_SAVE_STATE(cinfop, permstate)                \
  cinfop->src->next_input_byte = br_state.next_input_byte;   \
  cinfop->src->bytes_in_buffer = br_state.bytes_in_buffer;   \
  permstate.get_buffer = get_buffer;                         \
  permstate.bits_left = bits_left

#define CHECK_BIT_BUFFER(state, nbits, action)                             \
  {                                                                        \
    if (bits_left < (nbits)) {                                             \
      if (!jpeg_fill_bit_buffer(&(state), get_buffer, bits_left, nbits)) { \
        action;                                                            \
      }                                                                    \
      get_buffer = (state).get_buffer;                                     \
      bits_left = (state).bits_left;                                       \
    }                                                                      \
  }

#define GET_BITS(nbits) (((int)(get_buffer >> (bits_left -= (nbits)))) & ((1 << (nbits)) - 1))
#define PEEK_BITS(nbits) (((int)(get_buffer >> (bits_left - (nbits)))) & ((1 << (nbits)) - 1))
#define DROP_BITS(nbits) (bits_left -= (nbits))

#define HUFF_DECODE(result, state, htbl, failaction, slowlabel)                      \
  {                                                                                  \
    register int nb, look;                                                           \
    if (bits_left < HUFF_LOOKAHEAD) {                                                \
      if (!jpeg_fill_bit_buffer(&state, get_buffer, bits_left, 0)) {                 \
        failaction;                                                                  \
      }                                                                              \
      get_buffer = state.get_buffer;                                                 \
      bits_left = state.bits_left;                                                   \
      if (bits_left < HUFF_LOOKAHEAD) {                                              \
        nb = 1;                                                                      \
        goto slowlabel;                                                              \
      }                                                                              \
    }                                                                                \
    look = PEEK_BITS(HUFF_LOOKAHEAD);                                                \
    if ((nb = (htbl->lookup[look] >> HUFF_LOOKAHEAD)) <= HUFF_LOOKAHEAD) {           \
      DROP_BITS(nb);                                                                 \
      result = htbl->lookup[look] & ((1 << HUFF_LOOKAHEAD) - 1);                     \
    } else {                                                                         \
    slowlabel:                                                                       \
      if ((result = jpeg_huff_decode(&state, get_buffer, bits_left, htbl, nb)) < 0) { \
        failaction;                                                                  \
      }                                                                              \
      get_buffer = state.get_buffer;                                                 \
      bits_left = state.bits_left;                                                   \
    }                                                                                \
  }

/* ---- catg's decoder ---- */

/* Natural index -> zigzag index: the inverse of jpeg_natural_order's first 64 entries. */
static const unsigned char zigzag_of[64] = {
  0,  1,  5,  6,  14, 15, 27, 28, 2,  4,  7,  13, 16, 26, 29, 42, 3,  8,  12, 17, 25, 30,
  41, 43, 9,  11, 18, 24, 31, 40, 44, 53, 10, 19, 23, 32, 39, 45, 52, 54, 20, 22, 33, 38,
  46, 51, 55, 60, 21, 34, 37, 47, 50, 56, 59, 61, 35, 36, 48, 49, 57, 58, 62, 63,
};

/* zigzag_bits[i][b]: byte i of a natural-order mask holding b, as a zigzag-order mask. */
static uint64_t zigzag_bits[8][256];
static pthread_once_t zigzag_bits_once = PTHREAD_ONCE_INIT;

static void fill_zigzag_bits(void) {
  for (int i = 0; i < 8; i++)
    for (int b = 0; b < 256; b++) {
      uint64_t mask = 0;
      for (int bit = 0; bit < 8; bit++)
        if (b & (1 << bit)) mask |= (uint64_t)1 << zigzag_of[8 * i + bit];
      zigzag_bits[i][b] = mask;
    }
}

/* The nonzero coefficients of `block` as a mask over zigzag indices. */
static inline uint64_t nonzero_zigzag(const JCOEF *block) {
  uint64_t natural = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  for (int i = 0; i < 4; i++) {
    __m128i a = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    __m128i b = _mm_loadu_si128((const __m128i *)(block + 16 * i + 8));
    /* Saturating packs keep every nonzero coefficient nonzero. */
    __m128i is_zero = _mm_cmpeq_epi8(_mm_packs_epi16(a, b), zero);
    natural |= (uint64_t)(uint16_t)~_mm_movemask_epi8(is_zero) << (16 * i);
  }
#else
  for (int i = 0; i < 64; i++) natural |= (uint64_t)(block[i] != 0) << i;
#endif
  uint64_t zigzag = 0;
  for (int i = 0; i < 8; i++) zigzag |= zigzag_bits[i][(natural >> (8 * i)) & 0xFF];
  return zigzag;
}

/* Without a popcnt instruction in the baseline x86-64 target, __builtin_popcountll is a call. */
static inline int ones(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return (int)((x * 0x0101010101010101ULL) >> 56);
}

/* Zigzag positions lo..hi inclusive (0 <= lo, hi <= 63); empty when lo > hi. */
static inline uint64_t positions(int lo, int hi) {
  if (lo > hi) return 0;
  return (~(uint64_t)0 >> (63 - hi)) & (~(uint64_t)0 << lo);
}

/* Append a correction bit to each nonzero coefficient of `todo`, in zigzag order, as
 * decode_mcu_AC_refine does: a 1 raises the coefficient's magnitude by p1 unless that bit is
 * already set (which only happens when an MCU is decoded again after a suspension). */
#define CORRECT(todo_mask, failaction)                                                   \
  {                                                                                      \
    uint64_t todo = (todo_mask);                                                         \
    while (todo) {                                                                       \
      int n = bmi2 ? __builtin_popcountll(todo) : ones(todo);                            \
      if (n > 32) n = 32;                                                                \
      /* libjpeg reads these bits one at a time and refills only once its buffer is empty: \
       * take what is buffered, refill where libjpeg would, so the source is read exactly   \
       * as far ahead as libjpeg's and stray bytes before the next marker (a warning, which \
       * catg refuses) are counted alike. Refilling early for all n bits accepted files    \
       * that libjpeg refuses. */                                                         \
      if (bits_left < 1) CHECK_BIT_BUFFER(br_state, 1, failaction);                      \
      if (n > bits_left) n = bits_left;                                                  \
      bits_left -= n;                                                                    \
      uint64_t bits = (uint64_t)(get_buffer >> bits_left) & (((uint64_t)1 << n) - 1);    \
      /* The first coefficient takes the most significant bit. Branch-free: the bits are   \
       * coin flips, and a mispredicted branch per coefficient cost more than the rest. */ \
      bits <<= 64 - n;                                                                   \
      while (n-- > 0) {                                                                  \
        JCOEF *coef = *block + jpeg_natural_order[__builtin_ctzll(todo)];                \
        int value = *coef;                                                               \
        int raise = (int)(bits >> 63) & ((value & p1) == 0);                             \
        int sign = value >> 15; /* 0, or -1 for a negative coefficient */                \
        *coef = (JCOEF)(value + (((p1 ^ sign) - sign) & -raise));                        \
        todo &= todo - 1;                                                                \
        bits <<= 1;                                                                      \
      }                                                                                  \
    }                                                                                    \
  }

/* BMI2's pdep, as inline assembly so that only the BMI2 variant below ever runs it. */
static inline uint64_t deposit(uint64_t bits, uint64_t mask) {
#if defined(__x86_64__) && defined(__GNUC__)
  uint64_t out;
  __asm__("pdepq %2, %1, %0" : "=r"(out) : "r"(bits), "rm"(mask));
  return out;
#else
  (void)bits;
  return mask;
#endif
}

/* The decoder, compiled twice: `bmi2` is a constant in each variant. With BMI2 the zero
 * coefficient a run ends at is found in one pdep instead of a loop whose length is the run
 * (a mispredicted exit per symbol), and bits are counted with popcnt. */
static inline __attribute__((always_inline)) boolean refine(j_decompress_ptr cinfo, JBLOCKROW *MCU_data,
                                                           const int bmi2) {
  phuff_entropy_decoder *entropy = (phuff_entropy_decoder *)cinfo->entropy;
  int Se = cinfo->Se;
  int p1 = 1 << cinfo->Al;               /* 1 in the bit position being coded */
  int m1 = (int)((unsigned)-1 << cinfo->Al); /* -1 in the bit position being coded */
  register int s, k, r;
  unsigned int EOBRUN;
  JBLOCKROW block;
  register bit_buf_type get_buffer;
  register int bits_left;
  bitread_working_state br_state;
  d_derived_tbl *tbl;
  int num_newnz;
  int newnz_pos[DCTSIZE2];

  /* Installed only without restart markers (libjpeg's process_restart is private). */
  if (!entropy->pub.insufficient_data) {
    BITREAD_LOAD_STATE(cinfo, entropy->bitstate);
    EOBRUN = entropy->saved.EOBRUN;
    block = MCU_data[0];
    tbl = entropy->ac_derived_tbl;
    num_newnz = 0;
    k = cinfo->Ss;
    uint64_t band = positions(k, Se);
    uint64_t nonzero = nonzero_zigzag(*block) & band;

    if (EOBRUN == 0) {
      while (k <= Se) {
        HUFF_DECODE(s, br_state, tbl, goto undoit, slow);
        r = s >> 4;
        s &= 15;
        if (s) {
          if (s != 1) /* size of new coef should always be 1 */
            WARNMS(cinfo, JWRN_HUFF_BAD_CODE);
          CHECK_BIT_BUFFER(br_state, 1, goto undoit);
          s = GET_BITS(1) ? p1 : m1;
        } else if (r != 15) {
          EOBRUN = 1 << r; /* EOBr, run length is 2^r + appended bits */
          if (r) {
            CHECK_BIT_BUFFER(br_state, r, goto undoit);
            r = GET_BITS(r);
            EOBRUN += r;
          }
          break; /* rest of block is handled by EOB logic */
        }
        /* Skip r zero coefficients (correcting the nonzero ones passed on the way); the
         * next zero one, at t, is where a new coefficient goes. Past the band, t is Se + 1,
         * as libjpeg's loop leaves it. */
        uint64_t ahead = positions(k, Se);
        uint64_t zeros = ahead & ~nonzero;
        if (bmi2)
          zeros = deposit((uint64_t)1 << r, zeros);
        else
          for (int i = 0; i < r && zeros; i++) zeros &= zeros - 1;
        int t = zeros ? __builtin_ctzll(zeros) : Se + 1;
        CORRECT(nonzero & ahead & ~positions(t, 63), goto undoit);
        if (s) {
          int pos = jpeg_natural_order[t];
          (*block)[pos] = (JCOEF)s;
          newnz_pos[num_newnz++] = pos;
          if (t <= Se) nonzero |= (uint64_t)1 << t;
        }
        k = t + 1;
      }
    }

    if (EOBRUN > 0) {
      /* The rest of the block lies in an end-of-band run: only corrections. */
      CORRECT(nonzero & positions(k, Se), goto undoit);
      EOBRUN--;
    }

    BITREAD_SAVE_STATE(cinfo, entropy->bitstate);
    entropy->saved.EOBRUN = EOBRUN;
  }
  return TRUE;

undoit:
  /* Re-zero any output coefficients that we made newly nonzero */
  while (num_newnz > 0) (*block)[newnz_pos[--num_newnz]] = 0;
  return FALSE;
}

static boolean decode_mcu_AC_refine_fast(j_decompress_ptr cinfo, JBLOCKROW *MCU_data) {
  return refine(cinfo, MCU_data, 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("popcnt,bmi,bmi2"))) static boolean decode_mcu_AC_refine_bmi2(j_decompress_ptr cinfo,
                                                                                     JBLOCKROW *MCU_data) {
  return refine(cinfo, MCU_data, 1);
}
#define HAVE_BMI2_VARIANT 1
#endif

/* Called from the progress monitor, which libjpeg calls after a scan's start_pass and before
 * its first MCU: use the fast decoder if this is a Huffman-coded AC refinement scan (its BMI2
 * variant if `allow_bmi2` and the CPU has it). Returns 1 when it is installed for this scan. */
int catg_jpeg_refine_install(j_decompress_ptr cinfo, int allow_bmi2) {
  if (!cinfo->progressive_mode || cinfo->arith_code || cinfo->restart_interval != 0) return 0;
  if (cinfo->Ss == 0 || cinfo->Ah == 0 || cinfo->comps_in_scan != 1) return 0;
  if (pthread_once(&zigzag_bits_once, fill_zigzag_bits) != 0) return 0;
  boolean (*decoder)(j_decompress_ptr, JBLOCKROW *) = decode_mcu_AC_refine_fast;
#ifdef HAVE_BMI2_VARIANT
  if (allow_bmi2 && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt")) decoder = decode_mcu_AC_refine_bmi2;
#endif
  cinfo->entropy->decode_mcu = decoder;
  return 1;
}

/* The decoder of a skipped scan: its coefficients stay zero, which is what they contribute. */
static boolean decode_mcu_unused(j_decompress_ptr cinfo, JBLOCKROW *MCU_data) {
  (void)cinfo;
  (void)MCU_data;
  return TRUE;
}

/* Called from the progress monitor like catg_jpeg_refine_install. An AC scan (first or
 * refinement) of a component whose blocks the IDCT scales to 1x1 (luma at 1/8 scale) holds
 * nothing the output uses: jpeg_idct_1x1 reads the DC coefficient only. Rather than
 * entropy-decode it, jump to the marker that ends its data and decode its MCUs as nothing.
 * The output is the same as a full decode: block smoothing, the one step that could read
 * those coefficients, runs only for scans libjpeg has not seen, and it has seen these
 * (start_pass ran). Damage inside a skipped scan goes unnoticed, as it cannot show; ingest's
 * verify decodes every scan (catg_jpeg_start's EVERY_SCAN) and still refuses such a file. Returns 1
 * when this scan is skipped. */
int catg_jpeg_skip_unused_scan(j_decompress_ptr cinfo) {
  if (!cinfo->progressive_mode || cinfo->arith_code || cinfo->restart_interval != 0) return 0;
  if (cinfo->Ss == 0 || cinfo->comps_in_scan != 1 || cinfo->cur_comp_info[0]->DCT_scaled_size != 1) return 0;
  if (cinfo->entropy->decode_mcu == decode_mcu_unused) return 1; /* skipped already */
  /* start_pass emptied the bit buffer and nothing of the scan has been read yet: its data runs
   * from here to the first marker. As libjpeg's bit reader does, a run of 0xFF fill bytes
   * followed by 0x00 is one stuffed 0xFF of data, not a marker (stopping at it would count the
   * bytes up to the real marker as extraneous, a warning libjpeg's own decode never gives). */
  const JOCTET *next = cinfo->src->next_input_byte;
  const JOCTET *end = next + cinfo->src->bytes_in_buffer;
  for (;;) {
    const JOCTET *ff = memchr(next, 0xFF, (size_t)(end - next));
    const JOCTET *code = ff;
    if (ff != NULL) {
      while (code < end && *code == 0xFF) code++;
    }
    if (ff == NULL || code >= end) { /* no marker: libjpeg then reports the data cut short */
      next = end;
      break;
    }
    if (*code != 0x00) {
      next = ff;
      break;
    }
    next = code + 1;
  }
  cinfo->src->next_input_byte = next;
  cinfo->src->bytes_in_buffer = (size_t)(end - next);
  cinfo->entropy->decode_mcu = decode_mcu_unused;
  return 1;
}

#else

int catg_jpeg_skip_unused_scan(j_decompress_ptr cinfo) {
  (void)cinfo;
  return 0;
}

int catg_jpeg_refine_install(j_decompress_ptr cinfo, int allow_bmi2) {
  (void)cinfo;
  (void)allow_bmi2;
  return 0;
}

#endif
