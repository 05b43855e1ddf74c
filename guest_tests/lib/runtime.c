/* runtime.c - console, printf, exit and assertions for guests. */
#include "guest.h"

void guest_putc(char c)
{
    outb(GUEST_PORT_CONSOLE, (uint8_t)c);
}

void guest_puts(const char *s)
{
    while (*s)
        guest_putc(*s++);
}

void guest_exit(int code)
{
    outl(GUEST_PORT_EXIT, (uint32_t)code);
    for (;;) /* the VMM never returns here; be safe if it did */
        hlt();
}

void guest_fail(const char *file, int line, const char *what)
{
    guest_printf("FAIL %s:%d: %s\n", file, line, what);
    guest_exit(1);
}

static void emit(char *buf, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        buf[*n] = c;
    (*n)++;
}

static void emit_number(char *buf, size_t size, size_t *n, unsigned long long v, unsigned base,
                        int width, char pad, bool negative, bool prefix)
{
    char tmp[24];
    int len = 0;
    do {
        tmp[len++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        width--;
    if (prefix)
        width -= 2;
    if (pad == '0') {
        if (negative)
            emit(buf, size, n, '-');
        if (prefix) {
            emit(buf, size, n, '0');
            emit(buf, size, n, 'x');
        }
    }
    for (int i = len; i < width; i++)
        emit(buf, size, n, pad);
    if (pad != '0') {
        if (negative)
            emit(buf, size, n, '-');
        if (prefix) {
            emit(buf, size, n, '0');
            emit(buf, size, n, 'x');
        }
    }
    while (len)
        emit(buf, size, n, tmp[--len]);
}

int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(buf, size, &n, *fmt);
            continue;
        }
        fmt++;
        bool alt = false;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '#') {
            alt = true;
            fmt++;
        }
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        unsigned long long u;
        long long s;
        switch (*fmt) {
        case 'd':
            s = longs ? va_arg(ap, long long) : va_arg(ap, int);
            emit_number(buf, size, &n, s < 0 ? -(unsigned long long)s : (unsigned long long)s, 10,
                        width, pad, s < 0, false);
            break;
        case 'u':
            u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            emit_number(buf, size, &n, u, 10, width, pad, false, false);
            break;
        case 'x':
            u = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            emit_number(buf, size, &n, u, 16, width, pad, false, alt && u);
            break;
        case 'p':
            emit_number(buf, size, &n, (uintptr_t)va_arg(ap, void *), 16, width, pad, false, true);
            break;
        case 'c':
            emit(buf, size, &n, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            while (*str)
                emit(buf, size, &n, *str++);
            break;
        }
        case '%':
            emit(buf, size, &n, '%');
            break;
        default:
            emit(buf, size, &n, '%');
            emit(buf, size, &n, *fmt ? *fmt : '?');
            if (!*fmt)
                fmt--;
            break;
        }
    }
    if (size)
        buf[n < size ? n : size - 1] = 0;
    return (int)n;
}

int guest_printf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = guest_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    guest_puts(buf);
    return n;
}

/* Compilers may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n--; p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}
