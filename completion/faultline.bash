# bash completion for faultline(1). Installed as
# $(PREFIX)/share/bash-completion/completions/faultline; or: source this file.
# Options per command follow 'faultline COMMAND --help' (src/main.c);
# tests/integration/test_help_options.sh checks they agree.

_faultline()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -s || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="run capture boot trace version"
    local stations="asm_exc_page_fault exc_page_fault do_user_addr_fault lock_vma_under_rcu handle_mm_fault handle_pte_fault"

    # The command is the first word after "faultline".
    local cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    # After "--" (run): a program to run, then its arguments.
    for ((i = 2; i < cword; i++)); do
        if [[ ${words[i]} == -- ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
            return
        fi
    done

    # A value for the option before the cursor.
    case $prev in
        --scenario)
            COMPREPLY=($(compgen -W "write read kernel-write write-forked all" -- "$cur")); return ;;
        --format)
            if [[ $cmd == trace ]]; then
                COMPREPLY=($(compgen -W "text md json chrome" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "text md json" -- "$cur"))
            fi
            return ;;
        --mode)
            COMPREPLY=($(compgen -W "single fast" -- "$cur")); return ;;
        --view)
            COMPREPLY=($(compgen -W "line insn tree" -- "$cur")); return ;;
        --accel)
            COMPREPLY=($(compgen -W "tcg kvm auto" -- "$cur")); return ;;
        --probes)
            # A comma-separated list: complete the station after the last comma.
            local done_part="" last=$cur
            if [[ $cur == *,* ]]; then
                done_part=${cur%,*},
                last=${cur##*,}
            fi
            local s
            COMPREPLY=()
            for s in $(compgen -W "$stations" -- "$last"); do
                COMPREPLY+=("$done_part$s")
            done
            compopt -o nospace 2>/dev/null
            return ;;
        -o|--output|--kernel|--initrd|--vmlinux)
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
            return ;;
        --gdb)
            # unix:PATH or HOST:PORT
            if [[ $cur == unix:* ]]; then
                local p
                COMPREPLY=()
                for p in $(compgen -f -- "${cur#unix:}"); do COMPREPLY+=("unix:$p"); done
            else
                COMPREPLY=($(compgen -W "unix: 127.0.0.1:1234" -- "$cur"))
            fi
            compopt -o nospace 2>/dev/null
            return ;;
        --comm|--pid|--addr|--count|--timeout|--until|--max-steps|--over)
            return ;;   # free-form values
    esac

    local opts
    case $cmd in
        run) opts="--scenario --accel --format -o --output --probes --timeout --kernel --initrd --trace --until --max-steps --over --mode --view --help --" ;;
        capture) opts="--gdb --vmlinux --comm --pid --addr --page --probes --count --timeout --format -o --output --help" ;;
        boot) opts="--scenario --accel --kernel --initrd --timeout --help" ;;
        trace) opts="--scenario --accel --format -o --output --timeout --kernel --initrd --until --max-steps --over --mode --view --trace --help --" ;;
        version) opts="" ;;
        *) return ;;
    esac
    if [[ $cur == -* || -z $cur ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}
complete -F _faultline faultline
