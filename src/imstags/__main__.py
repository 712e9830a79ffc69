from imstags.cli import main

main()
