# The student's inline CLI stores IF = 1 instead of 0: interrupts stay enabled. timer_cli
# (an interrupt arrives while IF should be clear) and the state test must lose points.
/^bool dbt_emit_cli(/,/^}/s/emit_ctx_store_imm(e, DBT_CTX_VIF, 0);/emit_ctx_store_imm(e, DBT_CTX_VIF, (uint32_t)DBT_IF);/
