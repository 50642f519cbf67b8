
#compdef layerctl

_layerctl_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _LAYERCTL_COMPLETE=complete_zsh layerctl)
}

compdef _layerctl_completion layerctl

