from kds.cli.app import main

main()
