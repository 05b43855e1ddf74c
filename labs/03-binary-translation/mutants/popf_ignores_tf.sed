# The student's inline POPF never leaves when the image sets TF: the guest's single-step trap
# after the next instruction never comes. The single-step guests must lose points.
/^bool dbt_emit_popf(/,/^}/{/emit_leave_if(e, next, e->c->exit_continue, DBT_CTX_POPF_TF);/d}
