"""`python -m zferry.dr` runs the zferry-dr command line."""

from zferry.dr.cli import command_line

if __name__ == "__main__":
    command_line()
