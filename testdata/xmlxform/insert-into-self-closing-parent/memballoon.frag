<memballoon model='none'/>
