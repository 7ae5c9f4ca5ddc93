/* prov_photo.c - a person's photo made small enough for the address book: a JPEG larger than PROV_MAX_PHOTO is
 * decoded scaled down with libjpeg (Debian's libjpeg62-turbo) and encoded again, until it fits. */
#include "directory/provision.h"
#include "common/err.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* libjpeg reports a damaged image by calling error_exit, which must not return: back to the caller instead. */
struct photo_error {
	struct jpeg_error_mgr mgr;
	jmp_buf back;
	char message[JMSG_LENGTH_MAX];
};

static void photo_error_exit(j_common_ptr cinfo)
{
	struct photo_error *e = (struct photo_error *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, e->message);
	longjmp(e->back, 1);
}

static void photo_silent(j_common_ptr cinfo, int level)
{
	(void)cinfo;
	(void)level;
}

/* The image in data decoded at 1/denom of its size: pixels (a new array of *width_r x *height_r x *components_r
 * bytes), or NULL with a sentence in error_r. */
static unsigned char *decode(const unsigned char *data, size_t len, unsigned denom, unsigned *width_r,
			     unsigned *height_r, int *components_r, J_COLOR_SPACE *space_r, struct buf *error_r)
{
	struct jpeg_decompress_struct d;
	struct photo_error err;
	unsigned char *volatile pixels = NULL;
	d.err = jpeg_std_error(&err.mgr);
	err.mgr.error_exit = photo_error_exit;
	err.mgr.emit_message = photo_silent;
	if (setjmp(err.back)) {
		buf_printf(error_r, "the photo is not a JPEG that can be read (%s)", err.message);
		jpeg_destroy_decompress(&d);
		free(pixels);
		return NULL;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, data, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	d.scale_num = 1;
	d.scale_denom = denom;
	if (d.jpeg_color_space != JCS_GRAYSCALE)
		d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	size_t row = (size_t)d.output_width * (size_t)d.output_components;
	pixels = xmalloc(row * d.output_height);
	while (d.output_scanline < d.output_height) {
		JSAMPROW r = pixels + row * d.output_scanline;
		jpeg_read_scanlines(&d, &r, 1);
	}
	*width_r = d.output_width;
	*height_r = d.output_height;
	*components_r = d.output_components;
	*space_r = d.out_color_space;
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return pixels;
}

/* pixels encoded as a JPEG of the given quality: a new buffer in *out_r (free()), its size in *len_r. */
static void encode(const unsigned char *pixels, unsigned width, unsigned height, int components, J_COLOR_SPACE space,
		   int quality, unsigned char **out_r, unsigned long *len_r)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr mgr;
	c.err = jpeg_std_error(&mgr); /* nothing can be wrong with pixels we decoded: no error to catch */
	jpeg_create_compress(&c);
	*out_r = NULL;
	*len_r = 0;
	jpeg_mem_dest(&c, out_r, len_r);
	c.image_width = width;
	c.image_height = height;
	c.input_components = components;
	c.in_color_space = space;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	size_t row = (size_t)width * (size_t)components;
	while (c.next_scanline < c.image_height) {
		JSAMPROW r = (JSAMPROW)(pixels + row * c.next_scanline);
		jpeg_write_scanlines(&c, &r, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
}

int prov_photo_fit(const unsigned char *data, size_t len, unsigned char **out_r, size_t *len_r, struct buf *note_r,
		   struct buf *error_r)
{
	static const int qualities[] = { 85, 70, 50 };
	unsigned w0 = 0, h0 = 0;
	for (unsigned denom = 1; denom <= 8; denom *= 2) {
		unsigned w, h;
		int components;
		J_COLOR_SPACE space;
		unsigned char *pixels = decode(data, len, denom, &w, &h, &components, &space, error_r);
		if (pixels == NULL)
			return IX_EINVAL;
		if (denom == 1) {
			w0 = w;
			h0 = h;
		}
		/* the largest scale at most PROV_PHOTO_SIDE pixels a side (or the smallest there is) */
		if ((w > PROV_PHOTO_SIDE || h > PROV_PHOTO_SIDE) && denom < 8) {
			free(pixels);
			continue;
		}
		for (size_t q = 0; q < IX_ARRAY_LEN(qualities); q++) {
			unsigned char *out;
			unsigned long out_len;
			encode(pixels, w, h, components, space, qualities[q], &out, &out_len);
			if (out_len <= PROV_MAX_PHOTO) {
				buf_printf(note_r, "resized the photo from %ux%u pixels, %zu KiB, to %ux%u, %lu KiB\n",
					   w0, h0, (len + 1023) / 1024, w, h, (out_len + 1023) / 1024);
				*out_r = out;
				*len_r = out_len;
				free(pixels);
				return IX_OK;
			}
			free(out);
		}
		free(pixels);
	}
	buf_printf(error_r,
		   "the photo (%ux%u pixels) stays larger than the %d KiB address books take even at 1/8 of its size: "
		   "crop it and try again",
		   w0, h0, PROV_MAX_PHOTO / 1024);
	return IX_EINVAL;
}
