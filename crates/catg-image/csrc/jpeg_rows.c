/*
 * jpeg_rows.c: libjpeg-turbo's scanline API, a band of rows at a time, for catg's streaming
 * pipeline. The TurboJPEG API (the `turbojpeg` crate) decodes only whole frames; reading
 * scanlines lets colour conversion and resampling run band by band, so the full-size frame
 * never exists in memory.
 *
 * Errors never unwind through Rust: libjpeg reports them with longjmp, which lands in the
 * setjmp of the catg_jpeg_* call that is on the stack (no Rust frame lies between the two).
 * Warnings are errors, as TurboJPEG's stop-on-warning makes them: a damaged file is refused,
 * not served half grey. Every call returns 0 on success, or -1 with a message in `message`
 * and an error kind in `kind`.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

enum { KIND_CORRUPT = 1, KIND_TRUNCATED = 2, KIND_RESOURCE_LIMIT = 3 };
enum { FAST_AC = 1, NO_BMI2 = 2, EVERY_SCAN = 4 }; /* catg_jpeg_start's fast_refine flags */

struct error_manager {
  struct jpeg_error_mgr pub;
  jmp_buf on_error;
};

struct progress_manager {
  struct jpeg_progress_mgr pub;
  int max_scans;
  int fast_refine;    /* AC scans: 0 libjpeg's decoders, else jpeg_refine.c's, with these flags:
                       * NO_BMI2 (its portable variant), EVERY_SCAN (skip none) */
  int fast_scans;     /* scans jpeg_refine.c decoded or skipped */
  int skipped_scans;  /* of which skipped */
  int last_scan;      /* the input_scan_number whose decoder was last chosen */
};

/* jpeg_refine.c */
int catg_jpeg_refine_install(j_decompress_ptr cinfo, int allow_bmi2);
int catg_jpeg_skip_unused_scan(j_decompress_ptr cinfo);

typedef struct catg_jpeg {
  struct jpeg_decompress_struct cinfo;
  struct error_manager err;
  struct progress_manager progress;
  int started;
  int kind;
  char message[JMSG_LENGTH_MAX];
} catg_jpeg;

static void on_error_exit(j_common_ptr cinfo) {
  catg_jpeg *self = (catg_jpeg *)cinfo->client_data;
  (*cinfo->err->format_message)(cinfo, self->message);
  /* The coefficient buffer would not fit max_memory_to_use (jmemnobs.c has no backing store). */
  if (self->kind == 0 && cinfo->err->msg_code == JERR_NO_BACKING_STORE) {
    self->kind = KIND_RESOURCE_LIMIT;
    snprintf(self->message, sizeof self->message, "the JPEG needs more memory than its header allows for");
  }
  if (self->kind == 0) self->kind = KIND_CORRUPT;
  longjmp(self->err.on_error, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    catg_jpeg *self = (catg_jpeg *)cinfo->client_data;
    /* libjpeg warns "Premature end of JPEG file" when the data runs out. */
    self->kind = cinfo->err->msg_code == JWRN_JPEG_EOF ? KIND_TRUNCATED : KIND_CORRUPT;
    on_error_exit(cinfo);
  }
}

static void on_progress(j_common_ptr cinfo) {
  catg_jpeg *self = (catg_jpeg *)cinfo->client_data;
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  /* Each scan of a progressive JPEG re-walks the whole coefficient buffer: thousands of tiny
   * scans are a CPU bomb in a small file. */
  if (d->progressive_mode && self->progress.max_scans > 0 && d->input_scan_number > self->progress.max_scans) {
    self->kind = KIND_RESOURCE_LIMIT;
    snprintf(self->message, sizeof self->message, "the JPEG has more than %d scans (the scan limit)",
             self->progress.max_scans);
    longjmp(self->err.on_error, 1);
  }
  /* libjpeg calls this before every iMCU row; the first call of a scan comes after the scan's
   * start_pass and before its first MCU, which is when its decoder is chosen. */
  if (self->progress.fast_refine && d->progressive_mode && d->input_scan_number != self->progress.last_scan) {
    int flags = self->progress.fast_refine;
    int skipped = !(flags & EVERY_SCAN) && catg_jpeg_skip_unused_scan(d);
    self->progress.last_scan = d->input_scan_number;
    if (skipped || catg_jpeg_refine_install(d, !(flags & NO_BMI2))) {
      self->progress.fast_scans++;
      self->progress.skipped_scans += skipped;
    }
  }
}

catg_jpeg *catg_jpeg_new(void) {
  catg_jpeg *volatile self = calloc(1, sizeof(catg_jpeg));
  if (!self) return NULL;
  self->cinfo.err = jpeg_std_error(&self->err.pub);
  self->err.pub.error_exit = on_error_exit;
  self->err.pub.emit_message = on_message;
  self->cinfo.client_data = self;
  if (setjmp(self->err.on_error)) {
    free(self);
    return NULL;
  }
  jpeg_create_decompress(&self->cinfo);
  self->progress.pub.progress_monitor = on_progress;
  self->cinfo.progress = &self->progress.pub;
  return self;
}

void catg_jpeg_free(catg_jpeg *self) {
  if (!self) return;
  jpeg_destroy_decompress(&self->cinfo);
  free(self);
}

const char *catg_jpeg_message(const catg_jpeg *self) { return self->message; }

int catg_jpeg_kind(const catg_jpeg *self) { return self->kind; }

int catg_jpeg_fast_scans(const catg_jpeg *self) { return self->progress.fast_scans; }

int catg_jpeg_skipped_scans(const catg_jpeg *self) { return self->progress.skipped_scans; }

/*
 * Read the header of `data` (which must outlive the decoder) and start decompressing at
 * `eighths`/8 of the stored size (ignored for lossless JPEGs, which libjpeg decodes at full
 * size). CMYK and YCCK come out as CMYK; everything else as 8-bit RGB. Progressive JPEGs are
 * read in full here (into libjpeg's coefficient buffer), their AC scans by jpeg_refine.c's code
 * unless `fast_refine` is 0 (its flags are FAST_AC, NO_BMI2, EVERY_SCAN). `max_memory` (bytes, 0
 * for none) is libjpeg's ceiling for its whole-image buffers: a header that asks for more than
 * the caller admitted the decode with is refused rather than allocated. Reports the output size
 * and the number of bytes per pixel (3 or 4).
 */
int catg_jpeg_start(catg_jpeg *self, const unsigned char *data, size_t len, int eighths, int max_scans,
                    int fast_refine, long max_memory, unsigned *width, unsigned *height, int *components) {
  j_decompress_ptr cinfo = &self->cinfo;
  if (setjmp(self->err.on_error)) return -1;
  cinfo->mem->max_memory_to_use = max_memory > 0 ? max_memory : 0;
  self->progress.max_scans = max_scans;
  self->progress.fast_refine = fast_refine;
  jpeg_mem_src(cinfo, data, (unsigned long)len);
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    cinfo->out_color_space = JCS_CMYK;
  } else {
    cinfo->out_color_space = JCS_EXT_RGB;
  }
  cinfo->scale_num = (unsigned)eighths;
  cinfo->scale_denom = 8;
  jpeg_start_decompress(cinfo);
  self->started = 1;
  *width = cinfo->output_width;
  *height = cinfo->output_height;
  *components = cinfo->output_components;
  return 0;
}

/*
 * Decode up to `max_rows` further rows into `buf` (rows `stride` bytes apart). Sets `*rows` to
 * how many were written: fewer than asked only at the end of the image.
 */
int catg_jpeg_read(catg_jpeg *self, unsigned char *buf, size_t stride, unsigned max_rows, unsigned *rows) {
  j_decompress_ptr cinfo = &self->cinfo;
  volatile unsigned done = 0; /* changed between setjmp and a possible longjmp */
  *rows = 0;
  if (setjmp(self->err.on_error)) return -1;
  while (done < max_rows && cinfo->output_scanline < cinfo->output_height) {
    /* libjpeg hands out at most one iMCU row per call; ask for what fits. */
    JSAMPROW pointers[16];
    unsigned want = max_rows - done;
    if (want > 16) want = 16;
    for (unsigned i = 0; i < want; i++) pointers[i] = buf + (size_t)(done + i) * stride;
    done += jpeg_read_scanlines(cinfo, pointers, want);
    *rows = done;
  }
  return 0;
}

/* After the last row: read to the end of the data, so damage after the last scanline is found. */
int catg_jpeg_finish(catg_jpeg *self) {
  if (setjmp(self->err.on_error)) return -1;
  jpeg_finish_decompress(&self->cinfo);
  self->started = 0;
  return 0;
}
