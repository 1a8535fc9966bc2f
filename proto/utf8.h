/*
 * UTF-8 checking, shared by every place that lets text from the network or
 * a config file through: event validation, the config parser, the logs.
 */
#ifndef RELAIS_UTF8_H
#define RELAIS_UTF8_H

#include <stddef.h>

/*
 * Length of the UTF-8 sequence starting at p (n > 0 bytes available), or
 * 0 if it is not valid UTF-8: overlong forms, UTF-16 surrogates, values
 * past U+10FFFF and truncated sequences are refused.  ASCII is 1.
 */
size_t utf8_sequence_len(const unsigned char *p, size_t n);

#endif
