from toxbench.cli import main

main()
