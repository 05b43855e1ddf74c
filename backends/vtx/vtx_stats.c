/* vtx_stats.c - KVM's binary statistics (KVM_GET_STATS_FD, KVM API doc 4.134): a header, a
 * descriptor per counter (name, type, size) and the data block; read with pread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtx.h"

int vtx_stats_emit(int fd, const char *prefix,
                   void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    struct kvm_stats_header hdr;
    if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        return -EIO;
    size_t desc_size = sizeof(struct kvm_stats_desc) + hdr.name_size;
    uint8_t *descs = malloc(desc_size * hdr.num_desc);
    if (!descs)
        return -ENOMEM;
    if (pread(fd, descs, desc_size * hdr.num_desc, hdr.desc_offset) !=
        (ssize_t)(desc_size * hdr.num_desc)) {
        free(descs);
        return -EIO;
    }
    for (uint32_t i = 0; i < hdr.num_desc; i++) {
        const struct kvm_stats_desc *d = (const void *)(descs + i * desc_size);
        uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
        if (d->size != 1 || (type != KVM_STATS_TYPE_CUMULATIVE && type != KVM_STATS_TYPE_PEAK))
            continue; /* histograms and instant values are not counters */
        uint64_t value;
        if (pread(fd, &value, sizeof(value), hdr.data_offset + d->offset) != sizeof(value))
            continue;
        /* Only what happened: a run's KVM has dozens of counters at zero. */
        if (value == 0)
            continue;
        char name[96];
        snprintf(name, sizeof(name), "%s%s", prefix, d->name);
        uint32_t unit = d->flags & KVM_STATS_UNIT_MASK;
        emit(ctx, name, value,
             unit == KVM_STATS_UNIT_BYTES     ? "bytes"
             : unit == KVM_STATS_UNIT_SECONDS ? "ns"
             : unit == KVM_STATS_UNIT_CYCLES  ? "cycles"
                                              : "");
    }
    free(descs);
    return 0;
}
