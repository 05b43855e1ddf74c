# The student's inline STI leaves for a pending interrupt through exit_continue, not
# exit_shadow: the interrupt arrives before the instruction in STI's shadow. sti_shadow must
# lose points.
/^bool dbt_emit_sti(/,/^}/s/e->c->exit_shadow/e->c->exit_continue/
