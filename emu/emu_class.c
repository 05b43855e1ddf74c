/* emu_class.c - lookups in the Popek-Goldberg class table (emu_class.h). */
#include "emu_class.h"

static const struct emu_class_info class_infos[EMU_CLASS_COUNT] = {
#define EMU_CLASS_INFO(id, name, cat, ref, why) [EMU_CLASS_##id] = {name, cat, ref, why},
    EMU_CLASS_TABLE(EMU_CLASS_INFO)
#undef EMU_CLASS_INFO
};

const struct emu_class_info *emu_class_info(unsigned cls)
{
    return cls < EMU_CLASS_COUNT ? &class_infos[cls] : &class_infos[EMU_CLASS_NONE];
}

const char *pg_category_name(enum pg_category cat)
{
    switch (cat) {
    case PG_INNOCUOUS:
        return "innocuous";
    case PG_PRIVILEGED:
        return "privileged";
    case PG_SENSITIVE_UNPRIVILEGED:
        return "sensitive-unprivileged";
    case PG_HOST_CONFIGURABLE:
        return "host-configurable";
    case PG_CONTROL_TRANSFER:
        return "control-transfer";
    default:
        return "?";
    }
}
