/* Character classes of the C locale (the only locale a guest has). */
#ifndef VMLET_CTYPE_H
#define VMLET_CTYPE_H

#include "vmlet_c_begin.h"

int isalnum(int c);
int isalpha(int c);
int isblank(int c);
int iscntrl(int c);
int isdigit(int c);
int isgraph(int c);
int islower(int c);
int isprint(int c);
int ispunct(int c);
int isspace(int c);
int isupper(int c);
int isxdigit(int c);
int isascii(int c);
int tolower(int c);
int toupper(int c);

#include "vmlet_c_end.h"

#endif
