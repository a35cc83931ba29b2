"""`python -m zferry` runs the zferry command line."""

from zferry.cli.main import command_line

if __name__ == "__main__":
    command_line()
