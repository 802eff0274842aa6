/*
 * <stdio.h> without files. stdout and stderr collect characters into a line
 * and send each complete line (or a full buffer, or a flush) to the host log:
 * stdout at info level, stderr at warn. stdin is always at end of file, and
 * fopen() fails with ENOENT because a guest has no file system.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmlet.h"

struct vmlet_file {
  int level; /* log level for output streams; 0 for stdin */
  int error, eof;
  size_t len;
  char line[512];
};

static struct vmlet_file in_file = {0, 0, 1, 0, {0}}, out_file = {VMLET_LOG_INFO, 0, 0, 0, {0}},
                         err_file = {VMLET_LOG_WARN, 0, 0, 0, {0}};
FILE *stdin = &in_file, *stdout = &out_file, *stderr = &err_file;

int fflush(FILE *f) {
  if (!f) {
    fflush(stdout);
    return fflush(stderr);
  }
  if (f->level && f->len) vmlet_log(f->level, "stdio", 0, "%.*s", (int)f->len, f->line);
  f->len = 0;
  return 0;
}

int fputc(int c, FILE *f) {
  if (!f->level) {
    f->error = 1;
    errno = EBADF;
    return EOF;
  }
  if (c == '\n') {
    fflush(f);
  } else {
    if (f->len == sizeof f->line) fflush(f);
    f->line[f->len++] = (char)c;
  }
  return (unsigned char)c;
}

int putc(int c, FILE *f) { return fputc(c, f); }
int putchar(int c) { return fputc(c, stdout); }

size_t fwrite(const void *restrict p, size_t size, size_t n, FILE *restrict f) {
  const unsigned char *bytes = p;
  size_t total = size * n;
  for (size_t i = 0; i < total; i++)
    if (fputc(bytes[i], f) == EOF) return size ? i / size : 0;
  return n;
}

int fputs(const char *restrict s, FILE *restrict f) { return fwrite(s, 1, strlen(s), f) == strlen(s) ? 0 : EOF; }

int puts(const char *s) { return fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF ? EOF : 0; }

int vfprintf(FILE *restrict f, const char *restrict fmt, va_list ap) {
  char small[256];
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return -1;
  char *text = (size_t)n < sizeof small ? small : malloc((size_t)n + 1);
  if (!text) {
    errno = ENOMEM;
    return -1;
  }
  if (text != small) vsnprintf(text, (size_t)n + 1, fmt, ap);
  size_t written = fwrite(text, 1, (size_t)n, f);
  if (text != small) free(text);
  return written == (size_t)n ? n : -1;
}

int fprintf(FILE *restrict f, const char *restrict fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vfprintf(f, fmt, ap);
  va_end(ap);
  return n;
}

int vprintf(const char *restrict fmt, va_list ap) { return vfprintf(stdout, fmt, ap); }

int printf(const char *restrict fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vfprintf(stdout, fmt, ap);
  va_end(ap);
  return n;
}

/* sprintf cannot know the buffer's size; C leaves overflow undefined, so the limit is INT_MAX. */
int vsprintf(char *restrict buf, const char *restrict fmt, va_list ap) { return vsnprintf(buf, 0x7fffffff, fmt, ap); }

int sprintf(char *restrict buf, const char *restrict fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsprintf(buf, fmt, ap);
  va_end(ap);
  return n;
}

int vasprintf(char **out, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  *out = n < 0 ? NULL : malloc((size_t)n + 1);
  if (!*out) return -1;
  return vsnprintf(*out, (size_t)n + 1, fmt, ap);
}

int asprintf(char **out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(out, fmt, ap);
  va_end(ap);
  return n;
}

void perror(const char *s) {
  if (s && *s) fprintf(stderr, "%s: %s\n", s, strerror(errno));
  else fprintf(stderr, "%s\n", strerror(errno));
}

int setvbuf(FILE *restrict f, char *restrict buf, int mode, size_t size) {
  (void)f, (void)buf, (void)mode, (void)size;
  return 0;
}

/* ---- no files ---------------------------------------------------------------- */

FILE *fopen(const char *restrict path, const char *restrict mode) {
  (void)path, (void)mode;
  errno = ENOENT;
  return NULL;
}

FILE *freopen(const char *restrict path, const char *restrict mode, FILE *restrict f) {
  (void)f;
  return fopen(path, mode);
}

int fclose(FILE *f) { return fflush(f); }

size_t fread(void *restrict p, size_t size, size_t n, FILE *restrict f) {
  (void)p, (void)size, (void)n;
  if (f->level) f->error = 1;
  else f->eof = 1;
  return 0;
}

int fgetc(FILE *f) { return fread(NULL, 1, 1, f), EOF; }
int getc(FILE *f) { return fgetc(f); }
int getchar(void) { return fgetc(stdin); }
int ungetc(int c, FILE *f) { return (void)c, (void)f, EOF; }

char *fgets(char *restrict s, int n, FILE *restrict f) {
  (void)s, (void)n;
  fgetc(f);
  return NULL;
}

int fseek(FILE *f, long off, int whence) {
  (void)f, (void)off, (void)whence;
  errno = ESPIPE;
  return -1;
}

long ftell(FILE *f) { return fseek(f, 0, SEEK_CUR); }
void rewind(FILE *f) { f->eof = f->error = 0; }
int feof(FILE *f) { return f->eof; }
int ferror(FILE *f) { return f->error; }
void clearerr(FILE *f) { f->eof = f->error = 0; }

int remove(const char *path) {
  (void)path;
  errno = ENOENT;
  return -1;
}

int rename(const char *from, const char *to) {
  (void)from, (void)to;
  errno = ENOENT;
  return -1;
}
