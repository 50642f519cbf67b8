#compdef layerctl

_layerctl_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _LAYERCTL_COMPLETE=complete_zsh layerctl)
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _layerctl_completion "$@"  # autoloaded from $fpath: complete now
else
  compdef _layerctl_completion layerctl  # sourced: bind for later
fi

