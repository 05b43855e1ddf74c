# The student's inline STI never leaves for a pending interrupt: it is delivered at the next
# block boundary, after the window closed. sti_window must lose points.
/^bool dbt_emit_sti(/,/^}/s/emit_leave_if(e, next, e->c->exit_shadow, DBT_CTX_WANT_WINDOW);/(void)next;/
