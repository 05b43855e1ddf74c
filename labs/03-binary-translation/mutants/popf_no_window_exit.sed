# The student's inline POPF never leaves for a pending interrupt when it sets IF: it is
# delivered at the next block boundary, after the window closed. popf_window must lose points.
/^bool dbt_emit_popf(/,/^}/{/emit_leave_if(e, next, e->c->exit_continue, DBT_CTX_WANT_WINDOW);/d}
