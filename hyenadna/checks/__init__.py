"""Refusals before work starts: option values in range (values), devices and dtypes the machine has (devices)."""
