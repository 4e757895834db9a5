from hepx.cli import main

main()
