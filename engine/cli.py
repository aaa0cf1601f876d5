"""The otpatch command line."""
def main() -> int:
    print("otpatch")
    return 0
