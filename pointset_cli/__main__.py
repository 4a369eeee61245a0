"""`python -m pointset_cli` runs the command line."""

from pointset_cli.cli import main

if __name__ == "__main__":
    main()
