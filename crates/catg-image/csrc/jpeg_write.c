/*
 * jpeg_write.c: JPEG variants through libjpeg-turbo's libjpeg API, which (unlike TurboJPEG)
 * takes quantisation tables and lets catg quantise the DCT coefficients itself.
 *
 * Two things make catg's JPEGs smaller than stock libjpeg-turbo's at the same quality
 * (measured in docs/decisions/pipeline.md, "JPEG bytes"):
 * - quantisation tables tuned for perceived quality (the caller passes them, already scaled);
 * - a dead zone for AC coefficients: a coefficient that quantises to a small level only
 *   because it lies just past a rounding boundary costs more bits to code than it adds
 *   quality, so levels below `threshold` (in quantiser steps) round towards zero unless the
 *   value clears it. DC is rounded to nearest.
 * The DCT itself is libjpeg's float DCT; catg replaces the quantising forward-DCT step of the
 * compressor (struct jpeg_forward_dct's second member, the same since libjpeg 6b) after
 * jpeg_start_compress has made it. Entropy coding (optimised Huffman tables, progressive scans
 * when asked) stays libjpeg's.
 *
 * Errors never unwind through Rust: libjpeg's error_exit longjmps back into catg_jpeg_write.
 */
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

/* libjpeg's float forward DCT (jfdctflt.c; declared in its private jdct.h): scaled by 8 and by
 * the AAN factors of each row and column, which the divisors below undo. */
void jpeg_fdct_float(float *data);

/* The start of libjpeg's private struct jpeg_forward_dct (jpegint.h). */
struct forward_dct_prefix {
  void (*start_pass)(j_compress_ptr cinfo);
  void (*forward_DCT)(j_compress_ptr cinfo, jpeg_component_info *compptr, JSAMPARRAY sample_data,
                      JBLOCKROW coef_blocks, JDIMENSION start_row, JDIMENSION start_col, JDIMENSION num_blocks);
};

struct error_manager {
  struct jpeg_error_mgr pub;
  jmp_buf on_error;
  char message[JMSG_LENGTH_MAX];
  unsigned char *buffer; /* jpeg_mem_dest's output, grown by libjpeg: ours to free */
  unsigned long size;
};

typedef struct {
  float divisors[2][DCTSIZE2]; /* 1 / (step × 8 × AAN scale), per table, natural order */
  float threshold[DCTSIZE2];   /* a level is kept only if |value| clears it (steps) */
} quantiser;

static void on_error_exit(j_common_ptr cinfo) {
  struct error_manager *err = (struct error_manager *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->on_error, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
  (void)cinfo;
  (void)level; /* the compressor's only warnings are about its own settings, which are ours */
}

static void forward_dct(j_compress_ptr cinfo, jpeg_component_info *compptr, JSAMPARRAY sample_data,
                        JBLOCKROW coef_blocks, JDIMENSION start_row, JDIMENSION start_col, JDIMENSION num_blocks) {
  const quantiser *q = (const quantiser *)cinfo->client_data;
  const float *divisors = q->divisors[compptr->quant_tbl_no ? 1 : 0];
  float block[DCTSIZE2];
  sample_data += start_row;
  for (JDIMENSION b = 0; b < num_blocks; b++, start_col += DCTSIZE) {
    for (int row = 0; row < DCTSIZE; row++) {
      const JSAMPLE *samples = sample_data[row] + start_col;
      for (int col = 0; col < DCTSIZE; col++) block[row * DCTSIZE + col] = (float)samples[col] - CENTERJSAMPLE;
    }
    jpeg_fdct_float(block);
    JCOEFPTR out = coef_blocks[b];
    for (int i = 0; i < DCTSIZE2; i++) {
      float value = block[i] * divisors[i];
      float magnitude = fabsf(value);
      int level = (int)(magnitude + 0.5f);
      if (level == 1 && magnitude < q->threshold[i]) level = 0;
      out[i] = (JCOEF)(value < 0 ? -level : level);
    }
  }
}

/*
 * Encode `height` rows of RGB (`stride` bytes apart) as a 4:2:0 JPEG with the given luma and
 * chroma tables (natural order, steps 1-255), optimised Huffman tables, progressive when
 * `progressive`, and AC levels of 1 kept only from `threshold` steps up (0.5: plain rounding).
 * On success `*out` is a malloc'd buffer of `*out_len` bytes for the caller to free; on failure
 * returns -1 with libjpeg's message in `message` (JMSG_LENGTH_MAX bytes).
 */
int catg_jpeg_write(const unsigned char *rgb, unsigned width, unsigned height, size_t stride,
                    const unsigned short *luma, const unsigned short *chroma, int progressive, float threshold,
                    unsigned char **out, unsigned long *out_len, char *message) {
  struct jpeg_compress_struct cinfo;
  struct error_manager err;
  quantiser q;
  static const float aan[DCTSIZE] = {1.0f, 1.387039845f, 1.306562965f, 1.175875602f,
                                     1.0f, 0.785694958f, 0.541196100f, 0.275899379f};

  *out = NULL;
  *out_len = 0;
  memset(&cinfo, 0, sizeof cinfo);
  memset(&err, 0, sizeof err);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_message;
  if (setjmp(err.on_error)) {
    jpeg_destroy_compress(&cinfo);
    free(err.buffer);
    memcpy(message, err.message, JMSG_LENGTH_MAX);
    return -1;
  }
  jpeg_create_compress(&cinfo);
  cinfo.client_data = &q;
  jpeg_mem_dest(&cinfo, &err.buffer, &err.size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo); /* YCbCr, 4:2:0, JFIF header */
  unsigned int table[DCTSIZE2];
  for (int i = 0; i < DCTSIZE2; i++) table[i] = luma[i];
  jpeg_add_quant_table(&cinfo, 0, table, 100, TRUE); /* 100%: the steps as given */
  for (int i = 0; i < DCTSIZE2; i++) table[i] = chroma[i];
  jpeg_add_quant_table(&cinfo, 1, table, 100, TRUE);
  cinfo.optimize_coding = TRUE;
  cinfo.dct_method = JDCT_FLOAT;
  if (progressive) jpeg_simple_progression(&cinfo);
  for (int t = 0; t < 2; t++) {
    const JQUANT_TBL *steps = cinfo.quant_tbl_ptrs[t];
    for (int row = 0; row < DCTSIZE; row++)
      for (int col = 0; col < DCTSIZE; col++)
        q.divisors[t][row * DCTSIZE + col] =
            1.0f / ((float)steps->quantval[row * DCTSIZE + col] * aan[row] * aan[col] * 8.0f);
  }
  for (int i = 0; i < DCTSIZE2; i++) q.threshold[i] = i == 0 ? 0.5f : threshold;
  jpeg_start_compress(&cinfo, TRUE);
  ((struct forward_dct_prefix *)cinfo.fdct)->forward_DCT = forward_dct;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  *out = err.buffer;
  *out_len = err.size;
  return 0;
}
