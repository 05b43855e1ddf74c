/* placeholder: bench helper */
