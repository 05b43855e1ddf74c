/* host_x87.c - the thread's x87 holder (host_x87.h). */
#include "host_x87.h"

_Thread_local struct host_x87_holder *host_x87_holder;
