from kds.cli.app import main

if __name__ == "__main__":  # worker processes of `kds serve` re-import this module
    main()
