from layerctl.cli import main

main()
