/* Character classes of the C locale, from one table of class bits. */
#include <ctype.h>

enum { UPPER = 1, LOWER = 2, DIGIT = 4, SPACE = 8, PUNCT = 16, CNTRL = 32, HEX = 64, BLANK = 128 };

/* Class bits of c for c in 0..127; every other value belongs to no class. */
static unsigned classes(int c) {
  if (c < 0 || c > 127) return 0;
  if (c >= 'A' && c <= 'Z') return UPPER | (c <= 'F' ? HEX : 0);
  if (c >= 'a' && c <= 'z') return LOWER | (c <= 'f' ? HEX : 0);
  if (c >= '0' && c <= '9') return DIGIT | HEX;
  if (c == ' ') return SPACE | BLANK;
  if (c == '\t') return SPACE | BLANK | CNTRL;
  if (c >= '\n' && c <= '\r') return SPACE | CNTRL;
  if (c < 32 || c == 127) return CNTRL;
  return PUNCT;
}

int isalnum(int c) { return (classes(c) & (UPPER | LOWER | DIGIT)) != 0; }
int isalpha(int c) { return (classes(c) & (UPPER | LOWER)) != 0; }
int isblank(int c) { return (classes(c) & BLANK) != 0; }
int iscntrl(int c) { return (classes(c) & CNTRL) != 0; }
int isdigit(int c) { return (classes(c) & DIGIT) != 0; }
int isgraph(int c) { return (classes(c) & (UPPER | LOWER | DIGIT | PUNCT)) != 0; }
int islower(int c) { return (classes(c) & LOWER) != 0; }
int isprint(int c) { return c == ' ' || isgraph(c); }
int ispunct(int c) { return (classes(c) & PUNCT) != 0; }
int isspace(int c) { return (classes(c) & SPACE) != 0; }
int isupper(int c) { return (classes(c) & UPPER) != 0; }
int isxdigit(int c) { return (classes(c) & HEX) != 0; }
int isascii(int c) { return c >= 0 && c <= 127; }
int tolower(int c) { return isupper(c) ? c + 32 : c; }
int toupper(int c) { return islower(c) ? c - 32 : c; }
