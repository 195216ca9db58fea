"""A kernel whose stdout is not JSON."""

print("this is not JSON {")
